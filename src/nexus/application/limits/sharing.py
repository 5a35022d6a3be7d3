"""Sharing the limiter's counts between workers, off the request path: every ``interval_s``
each worker publishes its counts and takes the others' sums, which the limiter adds to its own.

The bound on overshoot: a worker sees the others' admissions at most one interval (plus a
round trip) late, so a limit can be exceeded by what the other workers admit in that time,
and no more. A database away leaves each worker on its own counts (the last sums fade after
``STALE_S``), with one warning per outage.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal

from nexus.application.limits.limiter import DAY_S, Scope, TrafficLimiter
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.system import Clock
from nexus.application.ports.traffic_shares import ScopeShare, TrafficShares

log = logging.getLogger(__name__)

STALE_S = 10.0
_SEPARATOR = "\x1f"


def scope_name(scope: Scope) -> str:
    return _SEPARATOR.join(scope)


class SharedCounts:
    """The other workers' sums, as last taken; zeros once older than ``STALE_S``."""

    def __init__(self, clock: Clock, sums: dict[str, ScopeShare] | None = None, *, day: int = -1) -> None:
        self._clock = clock
        self._sums = sums or {}
        self._day = day
        self._taken_at = clock.monotonic()

    def _get(self, scope: Scope) -> ScopeShare | None:
        if self._clock.monotonic() - self._taken_at > STALE_S:
            return None
        return self._sums.get(scope_name(scope))

    def requests(self, scope: Scope) -> int:
        found = self._get(scope)
        return found.requests if found else 0

    def tokens(self, scope: Scope) -> int:
        found = self._get(scope)
        return found.tokens if found else 0

    def streams(self, scope: Scope) -> int:
        found = self._get(scope)
        return found.streams if found else 0

    def cost(self, scope: Scope, day: int) -> Decimal:
        found = self._get(scope)
        return found.cost if found and day == self._day else Decimal(0)


class LimitSharing:
    def __init__(self, *, limiter: TrafficLimiter, shares: TrafficShares, clock: Clock, interval_s: float) -> None:
        self._limiter = limiter
        self._shares = shares
        self._clock = clock
        self._interval_s = interval_s
        self.worker = uuid.uuid4().hex
        self._away = False

    async def run(self) -> None:
        while True:
            await self.round()
            await asyncio.sleep(self._interval_s)

    async def round(self) -> None:
        day = int(self._clock.now_ms() / 1000 // DAY_S)
        now = self._clock.monotonic()
        own = [
            ScopeShare(
                scope=scope_name(scope),
                requests=counts.requests.total(now),
                tokens=counts.tokens.total(now),
                streams=counts.streams,
                cost=counts.cost_on(day),
            )
            for scope, counts in list(self._limiter.scopes())
        ]
        try:
            sums = await self._shares.exchange(self.worker, own, day=day)
        except QueriesUnavailable as exc:
            if not self._away:
                log.warning("Traffic limits are counted by each worker alone until the database answers: %s", exc)
            self._away = True
            return
        if self._away:
            log.info("Traffic limits are shared between workers again")
        self._away = False
        self._limiter.remote = SharedCounts(self._clock, sums, day=day)
