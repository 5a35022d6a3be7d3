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
    """Frames for a child's stdin, written together at the end of the event loop's turn.

    Under load several exchanges end in one turn; one ``write`` (one system call, one wake-up
    of the child) then carries all their frames instead of one each. Nothing waits: the flush
    is the loop's next callback.
    """

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._writer: asyncio.StreamWriter | None = None
        self.size = 0  # bytes held, not yet handed to the pipe

    def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if not self._frames:
            asyncio.get_running_loop().call_soon(self.flush)
        self._writer = writer
        self._frames.append(data)
        self.size += len(data)

    def flush(self) -> None:
        frames, writer = self._frames, self._writer
        self.discard()
        if frames and writer is not None and not writer.is_closing():
            writer.writelines(frames)

    def discard(self) -> None:
        """Forget what is held (its writer is gone; the caller sends it again another way)."""
        self._frames, self._writer, self.size = [], None, 0
