"""The recorder's journal: append-only segment files of exchanges waiting for the database.

Two kinds of segment share the directory and the record format (``segment_files``):
``*.journal``, written when the database is away or the recorder's queue is full, and
``*.wal``, the write-ahead log every exchange goes to before its client has the last byte
(``write_ahead.py``). Replay takes both, once their writer is gone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from nexus.adapters.persistence.segment_files import (
    LENGTH,
    claim,
    close_quietly,
    create_locked,
    segment_name,
    write_all,
)
from nexus.application.exchange import Exchange
from nexus.domain.masking import without_secrets

log = logging.getLogger(__name__)

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Exchange).decode

JOURNAL_SUFFIX = ".journal"
WAL_SUFFIX = ".wal"
# Claimed by renaming, before segments were owned through flock: still replayed.
_LEGACY_CLAIMED = "*.replay-*"
DAMAGED_DIR = "damaged"


def encode_record(exchange: Exchange) -> bytes:
    """One record: credentials masked before anything reaches the disk."""
    record = _encode(msgspec.structs.replace(exchange, request_headers=without_secrets(exchange.request_headers)))
    return LENGTH.pack(len(record)) + record


def decode_record_body(body: bytes) -> Exchange:
    """The exchange of a record ``encode_record`` made, without its length prefix."""
    return _decode(body)


class FileJournal:
    """Length-prefixed msgpack records in ``<dir>/<time>-<pid>.journal`` segments.

    Each process writes its own segment, holding its lock while the segment is open; replay
    claims a segment (this process's closed ones, or any of a process that is gone) by taking
    the lock, so two processes never replay the same one and none replays a segment still
    being written. A damaged segment gives what it holds up to the damage, and is then moved
    to ``damaged/`` with an error in the log, never replayed again and never in the way.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._current: int | None = None
        self._claimed: dict[str, int] = {}  # segment -> its locked descriptor
        self._damage: dict[str, str] = {}  # segment -> what is wrong with it

    def append(self, exchanges: Sequence[Exchange]) -> None:
        if self._current is None:
            self._current = create_locked(self._directory / segment_name(JOURNAL_SUFFIX))
        write_all(self._current, b"".join(encode_record(exchange) for exchange in exchanges))

    def segments(self) -> list[str]:
        self._close()
        if not self._directory.is_dir():
            return []
        for pattern in ("*" + JOURNAL_SUFFIX, "*" + WAL_SUFFIX, _LEGACY_CLAIMED):
            for path in self._directory.glob(pattern):
                key = str(path)
                if key not in self._claimed and (fd := claim(path)) is not None:
                    self._claimed[key] = fd
        return sorted(self._claimed, key=lambda segment: Path(segment).name)

    def read(self, segment: str) -> Iterator[Exchange]:
        offset = 0
        try:
            with Path(segment).open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                while header := handle.read(LENGTH.size):
                    # A length past the end is damage too (and must not be allocated).
                    (length,) = LENGTH.unpack(header) if len(header) == LENGTH.size else (size,)
                    record = handle.read(length) if offset + LENGTH.size + length <= size else b""
                    if len(record) < length:
                        self._damage[segment] = f"cut short at byte {offset} (a crash mid-write?)"
                        return
                    try:
                        exchange = _decode(record)
                    except msgspec.DecodeError as exc:
                        self._damage[segment] = f"unreadable record at byte {offset}: {exc}"
                        return
                    offset += LENGTH.size + length
                    yield exchange
        except OSError as exc:
            self._damage[segment] = f"unreadable at byte {offset}: {exc}"

    def remove(self, segment: str) -> None:
        path = Path(segment)
        damage = self._damage.pop(segment, None)
        try:
            if damage is None:
                path.unlink(missing_ok=True)
            else:
                kept = self._directory / DAMAGED_DIR / path.name
                kept.parent.mkdir(exist_ok=True)
                path.rename(kept)
                log.error(
                    "Journal segment %s is damaged (%s): the exchanges before the damage were stored, the file is "
                    "kept as %s",
                    path.name,
                    damage,
                    kept,
                )
        except OSError as exc:
            log.error("Journal segment %s cannot be removed (%s)", path.name, exc)
        if (fd := self._claimed.pop(segment, None)) is not None:
            close_quietly(fd)

    def close(self) -> None:
        """At shutdown: the segment written and those claimed but not replayed are let go."""
        self._close()
        for fd in self._claimed.values():
            close_quietly(fd)
        self._claimed.clear()

    def _close(self) -> None:
        if self._current is not None:
            close_quietly(self._current)  # and with it the lock: the segment is anyone's to replay
            self._current = None
