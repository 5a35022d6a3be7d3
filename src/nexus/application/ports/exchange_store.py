"""Where exchange rows go, and where they wait when it is unreachable."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from nexus.application.exchange import Exchange
from nexus.application.recording.row import ExchangeRow


class StoreUnavailable(Exception):
    """The store cannot take rows right now (down, unreachable, timing out)."""


@runtime_checkable
class ExchangeStore(Protocol):
    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        """Write rows and their body parts in one transaction; rows already stored (same
        ``(ts, id)``) are left as they are, so a replay never duplicates.

        Raises StoreUnavailable when the database cannot be reached.
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
