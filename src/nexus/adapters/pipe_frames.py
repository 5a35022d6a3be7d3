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
