"""The recorder's journal: append-only segment files of exchanges waiting for the database."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import msgspec

from nexus.application.exchange import Exchange
from nexus.domain.masking import without_secrets

_LENGTH = struct.Struct(">I")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Exchange).decode


class FileJournal:
    """Length-prefixed msgpack records in ``<dir>/<time>-<pid>.journal`` segments.

    Each process writes its own segment; a segment is claimed for replay by renaming it, so
    two processes sharing the directory never replay the same one. Credentials are masked
    before anything reaches the disk (the row built on replay masks them anyway).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._current: BinaryIO | None = None
        self._current_path: Path | None = None

    def append(self, exchanges: Sequence[Exchange]) -> None:
        handle = self._open()
        for exchange in exchanges:
            record = _encode(
                msgspec.structs.replace(exchange, request_headers=without_secrets(exchange.request_headers))
            )
            handle.write(_LENGTH.pack(len(record)) + record)
        handle.flush()

    def segments(self) -> list[str]:
        self._close()
        if not self._directory.is_dir():
            return []
        claimed = []
        for path in sorted(self._directory.glob("*.journal")) + self._orphaned():
            target = path.with_suffix(f".replay-{os.getpid()}")
            try:
                path.rename(target)
            except FileNotFoundError:
                continue  # another process claimed it
            claimed.append(str(target))
        claimed.extend(str(path) for path in sorted(self._directory.glob(f"*.replay-{os.getpid()}")))
        return sorted(set(claimed))

    def _orphaned(self) -> list[Path]:
        """Segments claimed by a process that died before replaying them."""
        orphans = []
        for path in sorted(self._directory.glob("*.replay-*")):
            owner = path.suffix.removeprefix(".replay-")
            if owner.isdigit() and int(owner) != os.getpid() and not _alive(int(owner)):
                orphans.append(path)
        return orphans

    def read(self, segment: str) -> Iterator[Exchange]:
        with Path(segment).open("rb") as handle:
            while len(header := handle.read(_LENGTH.size)) == _LENGTH.size:
                (length,) = _LENGTH.unpack(header)
                record = handle.read(length)
                if len(record) < length:
                    return  # torn by a crash mid-write
                try:
                    yield _decode(record)
                except msgspec.DecodeError:
                    return

    def remove(self, segment: str) -> None:
        Path(segment).unlink(missing_ok=True)

    def _open(self) -> BinaryIO:
        if self._current is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._current_path = self._directory / f"{time.time_ns():020d}-{os.getpid()}.journal"
            self._current = self._current_path.open("ab")
        return self._current

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
