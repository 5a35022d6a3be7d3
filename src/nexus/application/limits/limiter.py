"""Admission against the configured limits, in this process's memory (microseconds a request),
with what other workers admitted added in when they share their counts (``SharedCounts``).

Scopes: all traffic, the request's domain, and the client key it presented (a hash of it). A
request is admitted when no scope is at a limit; it then counts a request and a stream in each,
the stream released when the exchange ends. Its tokens and cost are counted once recorded
(``on_usage``, by request id), so a token or cost limit refuses the requests after the one
that crossed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol

from nexus.application.ports.system import Clock
from nexus.domain.errors import TrafficLimitReached
from nexus.domain.traffic_limits import (
    Measure,
    Refusal,
    ScopeKind,
    SlidingMinute,
    TrafficLimits,
    seconds_to_utc_midnight,
)

DAY_S = 86_400
_PENDING_MAX = 100_000  # requests awaiting their usage; beyond that the oldest are forgotten

Scope = tuple[str, ...]  # ("global",), ("domain", name), ("key", domain, key id)


class RemoteCounts(Protocol):
    """What the other workers admitted, as last shared (zeros when nothing is shared)."""

    def requests(self, scope: Scope) -> int: ...
    def tokens(self, scope: Scope) -> int: ...
    def streams(self, scope: Scope) -> int: ...
    def cost(self, scope: Scope, day: int) -> Decimal: ...


class NoRemote:
    def requests(self, scope: Scope) -> int:
        return 0

    def tokens(self, scope: Scope) -> int:
        return 0

    def streams(self, scope: Scope) -> int:
        return 0

    def cost(self, scope: Scope, day: int) -> Decimal:
        return Decimal(0)


@dataclass(slots=True)
class ScopeCounts:
    requests: SlidingMinute = field(default_factory=SlidingMinute)
    tokens: SlidingMinute = field(default_factory=SlidingMinute)
    streams: int = 0
    day: int = -1
    cost: Decimal = Decimal(0)

    def cost_on(self, day: int) -> Decimal:
        return self.cost if self.day == day else Decimal(0)


class _Scoped(NamedTuple):
    scope: Scope
    kind: ScopeKind
    name: str
    limits: TrafficLimits


class _Moment(NamedTuple):
    now: float  # steady clock, for the minute windows
    epoch: float
    day: int  # UTC day number, for the daily cost


class RateLimited(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class Admission:
    """One admitted request's hold on its scopes' streams, given back once."""

    __slots__ = ("_counts", "_released")

    def __init__(self, counts: list[ScopeCounts]) -> None:
        self._counts = counts
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            for counts in self._counts:
                counts.streams -= 1


NOTHING_HELD = Admission([])


class TrafficLimiter:
    def __init__(
        self,
        *,
        clock: Clock,
        everything: TrafficLimits,
        per_domain: TrafficLimits,
        per_key: TrafficLimits,
        remote: RemoteCounts | None = None,
    ) -> None:
        self._clock = clock
        self._everything = everything
        self._per_domain = per_domain
        self._per_key = per_key
        self.remote: RemoteCounts = remote or NoRemote()
        self.counts: dict[Scope, ScopeCounts] = {}
        self._pending: dict[str, list[ScopeCounts]] = {}

    @property
    def configured(self) -> bool:
        return self._everything.any or self._per_domain.any or self._per_key.any

    @property
    def limits_keys(self) -> bool:
        """Whether ``admit`` needs the client key's id (hashing the key costs a request time)."""
        return self._per_key.any

    def admit(self, request_id: str, domain: str, key_id: str | None, domain_limits: TrafficLimits | None) -> Admission:
        """Count the request in; ``RateLimited`` when a scope is at one of its limits."""
        own = domain_limits.over(self._per_domain) if domain_limits is not None else self._per_domain
        scopes: list[_Scoped] = []
        if self._everything.any:
            scopes.append(_Scoped(("global",), "global", "all traffic", self._everything))
        if own.any:
            scopes.append(_Scoped(("domain", domain), "domain", domain, own))
        if key_id is not None and self._per_key.any:
            scopes.append(_Scoped(("key", domain, key_id), "key", "this client key", self._per_key))
        if not scopes:
            return NOTHING_HELD
        epoch = self._clock.now_ms() / 1000
        moment = _Moment(self._clock.monotonic(), epoch, int(epoch // DAY_S))
        held = []
        for scoped in scopes:
            counts = self.counts.get(scoped.scope)
            if counts is None:
                counts = self.counts[scoped.scope] = ScopeCounts()
            refusal = self._refusal(scoped, counts, moment)
            if refusal is not None:
                raise RateLimited(refusal)
            held.append(counts)
        for counts in held:
            counts.requests.add(moment.now)
            counts.streams += 1
        if len(self._pending) >= _PENDING_MAX:
            self._pending.pop(next(iter(self._pending)))
        self._pending[request_id] = held
        return Admission(held)

    def on_usage(self, request_id: str, tokens: int, cost_usd: Decimal | None) -> None:
        """A recorded exchange's tokens and cost, added to the scopes it was admitted in."""
        held = self._pending.pop(request_id, None)
        if not held:
            return
        now = self._clock.monotonic()
        day = int(self._clock.now_ms() / 1000 // DAY_S)
        for counts in held:
            if tokens:
                counts.tokens.add(now, tokens)
            if cost_usd:
                if counts.day != day:
                    counts.day, counts.cost = day, Decimal(0)
                counts.cost += cost_usd

    def scopes(self) -> Iterable[tuple[Scope, ScopeCounts]]:
        return self.counts.items()

    def _refusal(self, scoped: _Scoped, counts: ScopeCounts, at: _Moment) -> Refusal | None:
        scope, limits, remote = scoped.scope, scoped.limits, self.remote

        def refuse(measure: Measure, limit: float, used: float, wait_s: int) -> Refusal:
            return Refusal(
                scope=scoped.kind, name=scoped.name, measure=measure, limit=limit, used=used, retry_after_s=wait_s
            )

        if limits.concurrent_streams is not None:
            streams = counts.streams + remote.streams(scope)
            if streams >= limits.concurrent_streams:
                return refuse("streams", limits.concurrent_streams, streams, 1)
        per_minute: tuple[tuple[Measure, int | None, SlidingMinute, Callable[[Scope], int]], ...] = (
            ("requests", limits.requests_per_minute, counts.requests, remote.requests),
            ("tokens", limits.tokens_per_minute, counts.tokens, remote.tokens),
        )
        for measure, limit, window, elsewhere in per_minute:
            if limit is not None:
                others = elsewhere(scope)
                used = window.total(at.now) + others
                if used >= limit:
                    return refuse(measure, limit, used, window.seconds_until_below(at.now, limit - others))
        if limits.daily_usd is not None:
            cost = counts.cost_on(at.day) + remote.cost(scope, at.day)
            if cost >= limits.daily_usd:
                return refuse("cost", limits.daily_usd, float(cost), seconds_to_utc_midnight(at.epoch))
        return None


def limit_reached(refusal: Refusal) -> TrafficLimitReached:
    """The 429 a refusal is answered with: Anthropic's error format, ``retry-after``, and
    ``x-nexus-ratelimit-*`` headers saying which of our limits it was."""
    remaining = max(0.0, refusal.limit - refusal.used)
    headers = (
        (b"x-nexus-ratelimit-scope", refusal.scope.encode()),
        (b"x-nexus-ratelimit-measure", refusal.measure.encode()),
        (b"x-nexus-ratelimit-limit", f"{refusal.limit:g}".encode()),
        (b"x-nexus-ratelimit-remaining", f"{remaining:g}".encode()),
        (b"x-nexus-ratelimit-reset", str(refusal.retry_after_s).encode()),
    )
    return TrafficLimitReached(refusal.message, retry_after_s=refusal.retry_after_s, headers=headers)
