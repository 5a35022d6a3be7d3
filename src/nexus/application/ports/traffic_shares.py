"""Where workers share what they admitted, so the traffic limits hold across them."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

import msgspec


class ScopeShare(msgspec.Struct, frozen=True, kw_only=True):
    """One scope's counts: a worker's own as it publishes them, or the others' summed."""

    scope: str
    requests: int = 0  # in the last minute
    tokens: int = 0  # in the last minute
    streams: int = 0  # in flight now
    cost: Decimal = Decimal(0)  # on ``day``


@runtime_checkable
class TrafficShares(Protocol):
    """Raises ``QueriesUnavailable`` when the database cannot be reached."""

    async def exchange(self, worker: str, own: list[ScopeShare], *, day: int) -> dict[str, ScopeShare]:
        """Publish this worker's counts; answer the other workers' sums by scope (their
        minute and stream counts when published lately, their cost on ``day`` whenever it was,
        so a restart does not forget the day)."""
        ...
