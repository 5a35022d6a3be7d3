"""Where exchange rows go, and where they wait when it is unreachable."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from nexus.application.exchange import Exchange
from nexus.application.recording.row import ExchangeRow


class StoreUnavailable(Exception):
    """The store cannot take any rows right now (down, unreachable, timing out): try again later."""


class StoreRejected(Exception):
    """The store refused these rows (a value it cannot hold, a constraint): the same rows fail
    the same way again, so one of them is to blame."""


@runtime_checkable
class ExchangeStore(Protocol):
    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        """Write rows and their body parts in one transaction; rows already stored (same
        ``(ts, id)``) are left as they are, so a replay never duplicates.

        Raises StoreUnavailable when the database cannot take rows at all, StoreRejected when
        it refused something these rows hold (nothing of the batch is stored then).
        """
        ...


@runtime_checkable
class ExchangeJournal(Protocol):
    """An append-only file of exchanges that could not be stored yet."""

    def append(self, exchanges: Sequence[Exchange]) -> None:
        """Write exchanges durably enough to survive the process (flushed, not fsynced)."""
        ...

    def segments(self) -> list[str]:
        """Segments ready to replay, oldest first (the one being written is closed first)."""
        ...

    def read(self, segment: str) -> Iterator[Exchange]:
        """A segment's exchanges, one at a time (a segment can be large); a torn last record
        (crash mid-write) is skipped."""
        ...

    def remove(self, segment: str) -> None: ...

    def close(self) -> None:
        """At shutdown: close the segment being written and let go of claimed ones (a later
        append opens a new segment)."""
        ...


class WriteAhead(Protocol):
    """Every exchange on disk before its client has the last byte (replayed after a crash)."""

    def append(self, exchange: Exchange) -> object | None:
        """Write the exchange; the mark to ``settle`` it with (None: it could not be written)."""
        ...

    def settle(self, mark: object | None) -> None:
        """The exchange is safe elsewhere now (stored, quarantined or journaled)."""
        ...

    def close(self) -> None: ...

    async def sync_forever(self, interval_s: float) -> None:
        """fsync what was written, every ``interval_s`` (against the machine going down)."""
        ...


class Recording(Protocol):
    """What records exchanges while the app runs: the recorder on this event loop, or the
    recorder process (both take ``write_ahead`` before the client's last byte, then ``observe``)."""

    @property
    def needs_response_body(self) -> bool: ...

    @property
    def stored(self) -> int: ...

    @property
    def journaled(self) -> int: ...

    @property
    def quarantined(self) -> int: ...

    def write_ahead(self, exchange: Exchange) -> None: ...

    def observe(self, exchange: Exchange) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Quarantined(msgspec.Struct, frozen=True):
    """An exchange the store refused on its own, kept aside with why."""

    request_id: str
    reason: str
    at: datetime


@runtime_checkable
class ExchangeQuarantine(Protocol):
    """Where an exchange goes that the store refuses even alone: kept, never retried by itself."""

    def put(self, exchange: Exchange, reason: str) -> None:
        """Keep the exchange (credentials masked) and why it was refused."""
        ...

    def count(self) -> int: ...

    def latest(self, limit: int) -> list[Quarantined]:
        """The most recently quarantined, newest first."""
        ...

    def entries(self) -> Iterator[tuple[str, Exchange]]:
        """Every entry's name and exchange, oldest first (to retry them)."""
        ...

    def release(self, name: str) -> None:
        """Forget an entry whose exchange is now stored."""
        ...
