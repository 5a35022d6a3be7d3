"""Exchanges the database refused, kept on disk one file each (``<request id>.quarantined``).

A file holds the exchange as the journal would (credentials masked) with the reason and the
time. The proxy never retries them by itself: ``claude-nexus-proxy quarantine retry`` does,
once an upgrade or a schema fix lets the database take them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from nexus.application.exchange import Exchange
from nexus.application.ports.exchange_store import Quarantined
from nexus.domain.masking import without_secrets

SUFFIX = ".quarantined"


class _Entry(msgspec.Struct):
    reason: str
    at: datetime
    exchange: Exchange


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Entry).decode


class FileQuarantine:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def put(self, exchange: Exchange, reason: str) -> None:
        kept = msgspec.structs.replace(exchange, request_headers=without_secrets(exchange.request_headers))
        entry = _Entry(reason=reason, at=datetime.now(UTC), exchange=kept)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{_safe_name(exchange.request_id)}{SUFFIX}"
        partial = target.with_suffix(f".partial-{os.getpid()}")
        # Written whole, flushed to disk, then renamed: a crash leaves the old file or the new one.
        with partial.open("wb") as handle:
            handle.write(_encode(entry))
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)

    def count(self) -> int:
        return sum(1 for _ in self._files())

    def latest(self, limit: int) -> list[Quarantined]:
        newest = sorted(self._files(), key=_modified, reverse=True)[:limit]
        return [
            Quarantined(request_id=entry.exchange.request_id, reason=entry.reason, at=entry.at)
            for path in newest
            if (entry := self._read(path)) is not None
        ]

    def entries(self) -> Iterator[tuple[str, Exchange]]:
        """Every readable entry's name (its file's) and exchange, oldest first."""
        for path in sorted(self._files(), key=_modified):
            if (entry := self._read(path)) is not None:
                yield path.name, entry.exchange

    def release(self, name: str) -> None:
        """Forget an entry once its exchange is stored."""
        (self.directory / Path(name).name).unlink(missing_ok=True)

    def _files(self) -> Iterator[Path]:
        if self.directory.is_dir():
            yield from self.directory.glob(f"*{SUFFIX}")

    @staticmethod
    def _read(path: Path) -> _Entry | None:
        with contextlib.suppress(OSError, msgspec.DecodeError):
            return _decode(path.read_bytes())
        return None


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _safe_name(request_id: str) -> str:
    """A file name from an id (always a UUID from the proxy; anything else cannot escape the folder)."""
    return "".join(char if char.isalnum() or char == "-" else "_" for char in request_id)[:64] or "unnamed"
