"""Time and identity, kept out of the domain so tests can pin them."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations."""
        ...


@runtime_checkable
class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A fresh unique identifier (a UUID string)."""
        ...
