"""Segment files shared by the processes of one data directory, owned through ``flock``.

A process holds an exclusive ``flock`` on every segment it writes, from before the file shows
under its name until it is closed; a replay claims a segment by taking that lock. The kernel
drops a lock with its process, so a segment of a process that died (even by SIGKILL) is
claimable at once, and one still written to never is. Process ids cannot tell that: after a
container restart the new proxy is pid 1 again, as the old one was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import time
from pathlib import Path

LENGTH = struct.Struct(">I")  # each record: its length, then the msgpack of the exchange


def segment_name(suffix: str) -> str:
    """Names sort oldest first: nanoseconds since the epoch, then the writer's pid."""
    return f"{time.time_ns():020d}-{os.getpid()}{suffix}"


def create_locked(path: Path) -> int:
    """A new segment's descriptor (append-only), locked before anyone can see the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(path.name + ".new")
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(hidden, path)
    return fd


def claim(path: Path) -> int | None:
    """The segment's descriptor, locked, or None when a live process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:  # replayed and removed by another process meanwhile
        os.close(fd)
        return None
    return fd


def write_all(fd: int, data: bytes) -> None:
    """One ``write`` in practice (a regular file takes it whole); looped for the rare short one."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
