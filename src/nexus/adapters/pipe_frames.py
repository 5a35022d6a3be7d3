"""Length-prefixed frames over a child process's pipes (the webhook child, the recorder process).

A frame is a 4-byte big-endian length and that many bytes. The webhook child's frames are
JSON bodies (its URL first); the recorder process's are described in ``recorder_process``.
"""

from __future__ import annotations

import asyncio
import struct

HEADER = struct.Struct("!I")
MAX_FRAME = 16 * 1024 * 1024


def frame(data: bytes) -> bytes:
    return HEADER.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader, max_size: int = MAX_FRAME) -> bytes | None:
    """The next frame, or None at the end of the pipe (or past ``max_size``: a broken writer)."""
    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > max_size:
            return None
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


class Outbox:
    """Frames for a child's stdin, written together ``delay_s`` later (0: at the end of the
    event loop's turn), or at once past ``max_bytes``.

    Each ``write`` to a pipe its child is waiting on wakes the child, and on a virtual machine
    waking a process on the other CPU is dear: it was charged to the proxy as system time, and
    it grew when the child got faster (a faster child waits on the pipe more often). Frames
    held for a few milliseconds go out in one ``write`` and one wake-up, however many
    exchanges ended meanwhile. Nothing waits on it; what is held is counted in ``size``.
    """

    def __init__(self, *, delay_s: float = 0.0, max_bytes: int = 1 << 20) -> None:
        self._delay_s = delay_s
        self._max_bytes = max_bytes
        self._frames: list[bytes] = []
        self._writer: asyncio.StreamWriter | None = None
        self._due: asyncio.Handle | None = None
        self.size = 0  # bytes held, not yet handed to the pipe

    def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        self._writer = writer
        self._frames.append(data)
        self.size += len(data)
        if self.size >= self._max_bytes:
            self.flush()
        elif self._due is None:
            loop = asyncio.get_running_loop()
            self._due = loop.call_later(self._delay_s, self.flush) if self._delay_s else loop.call_soon(self.flush)

    def flush(self) -> None:
        frames, writer = self._frames, self._writer
        self.discard()
        if frames and writer is not None and not writer.is_closing():
            writer.writelines(frames)

    def discard(self) -> None:
        """Forget what is held (its writer is gone; the caller sends it again another way)."""
        if self._due is not None:
            self._due.cancel()
        self._frames, self._writer, self._due, self.size = [], None, None, 0
