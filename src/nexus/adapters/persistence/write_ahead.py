"""The write-ahead log: every exchange on disk before its client has the last byte.

``append`` is one ``write`` of the masked record to this process's ``*.wal`` segment: once
it returns the record is the kernel's, so a proxy killed with SIGKILL a moment later loses
nothing (the next start replays the segment; storing is idempotent, so a record stored before
the kill is not doubled). Against the machine itself going down, ``sync_forever`` fsyncs the
segments written to every ``sync_interval_s`` (group commit, in a thread: the event loop
never waits on the disk).

The recorder ``settle``s each exchange once it is stored, quarantined or journaled; a segment
is removed when it is full (``segment_bytes``) and every record in it is settled, so the log
holds little more than the exchanges on their way to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from nexus.adapters.persistence.journal import WAL_SUFFIX, encode_record
from nexus.adapters.persistence.segment_files import close_quietly, create_locked, segment_name, write_all
from nexus.application.exchange import Exchange

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 * 1024 * 1024
# A settled segment at least this large is swapped for a new one at once, so a quiet proxy
# does not keep megabytes that a restart after a crash would replay for nothing.
SETTLED_ROTATE_BYTES = 1024 * 1024


class _Segment:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = create_locked(path)
        self.size = 0
        self.pending = 0
        self.full = False
        self.dirty = False  # written since its last fsync


class WriteAheadLog:
    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self._directory = Path(directory)
        self._segment_bytes = segment_bytes
        self._current: _Segment | None = None
        self._open: list[_Segment] = []
        self.failed = 0

    def append(self, exchange: Exchange) -> object | None:
        """The record written (a mark to ``settle``), or None when the disk refused it."""
        return self.append_record(encode_record(exchange))

    def append_record(self, record: bytes) -> object | None:
        """``append`` of a record ``encode_record`` made (for a caller that needs its bytes too)."""
        try:
            segment = self._current or self._start()
            assert segment.fd is not None
            write_all(segment.fd, record)
        except OSError as exc:
            self.failed += 1
            if self.failed == 1 or self.failed % 1000 == 0:
                log.error("Write-ahead log cannot write (%s; %d exchanges not written ahead)", exc, self.failed)
            return None
        segment.size += len(record)
        segment.pending += 1
        segment.dirty = True
        if segment.size >= self._segment_bytes:
            self._retire(segment)
        return segment

    def settle(self, mark: object | None) -> None:
        """The exchange ``mark`` was written for is safe elsewhere (stored, quarantined, journaled)."""
        if not isinstance(mark, _Segment):
            return
        mark.pending -= 1
        if mark.pending == 0 and not mark.full and mark.size >= SETTLED_ROTATE_BYTES:
            self._retire(mark)
        elif mark.pending == 0 and mark.full:
            self._remove(mark)

    def close(self) -> None:
        """At shutdown: settled segments removed; others closed for the next start to replay."""
        for segment in list(self._open):
            if segment.pending == 0:
                self._remove(segment)
            elif segment.fd is not None:
                close_quietly(segment.fd)
                segment.fd = None
        self._open = []
        self._current = None

    async def sync_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            for segment in [segment for segment in self._open if segment.dirty]:
                segment.dirty = False
                if (fd := segment.fd) is not None:
                    with contextlib.suppress(OSError):  # removed meanwhile: all of it was settled
                        await asyncio.to_thread(os.fsync, fd)

    def _start(self) -> _Segment:
        segment = _Segment(self._directory / segment_name(WAL_SUFFIX))
        self._current = segment
        self._open.append(segment)
        return segment

    def _retire(self, segment: _Segment) -> None:
        """No more records go to ``segment``; it goes once they are all settled."""
        segment.full = True
        if self._current is segment:
            self._current = None
        if segment.pending == 0:
            self._remove(segment)

    def _remove(self, segment: _Segment) -> None:
        try:
            segment.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Write-ahead segment %s cannot be removed (%s)", segment.path.name, exc)
        if segment.fd is not None:
            close_quietly(segment.fd)  # unlinked first: no one can claim it in between
            segment.fd = None
        if segment in self._open:
            self._open.remove(segment)
        if self._current is segment:
            self._current = None
