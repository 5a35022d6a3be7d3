"""Limits on the traffic the proxy admits: requests and tokens per minute, concurrent streams
and cost per UTC day, for all traffic, a domain, or one client key, and how a refusal reads.

Counts are kept in one-second buckets over a sliding minute: exact to the second, constant
memory per scope, and cheap enough for the hot path (an admission touches a few integers).
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import msgspec

Measure = Literal["requests", "tokens", "streams", "cost"]
ScopeKind = Literal["global", "domain", "key", "session"]
WINDOW_S = 60
T = TypeVar("T", int, float)
DAY_S = 86_400


class TrafficLimits(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one scope may use; None is no limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None  # input + output, as answered
    concurrent_streams: int | None = None  # requests in flight, streamed or not
    daily_usd: float | None = None  # refused once the UTC day's cost reached it

    def over(self, defaults: TrafficLimits) -> TrafficLimits:
        """These limits, each unset one taken from ``defaults``."""
        return TrafficLimits(
            requests_per_minute=_first(self.requests_per_minute, defaults.requests_per_minute),
            tokens_per_minute=_first(self.tokens_per_minute, defaults.tokens_per_minute),
            concurrent_streams=_first(self.concurrent_streams, defaults.concurrent_streams),
            daily_usd=_first(self.daily_usd, defaults.daily_usd),
        )

    @property
    def any(self) -> bool:
        return any(value is not None for value in msgspec.structs.astuple(self))


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    scope: ScopeKind
    name: str  # "all traffic", the domain, or "this client key"
    measure: Measure
    limit: float
    used: float
    retry_after_s: int
    reason: str | None = None  # the runaway guard's own words

    @property
    def message(self) -> str:
        if self.reason is not None:
            return f"{self.reason}: refused by the proxy's runaway guard. Retry after {self.retry_after_s} s."
        what = {
            "requests": f"{self.limit:g} requests per minute",
            "tokens": f"{self.limit:,.0f} tokens per minute",
            "streams": f"{self.limit:g} concurrent requests",
            "cost": f"${self.limit:,.2f} per UTC day",
        }[self.measure]
        return (
            f"Rate limit of {self.name} reached: {what} (the proxy's limit, not Anthropic's)."
            f" Retry after {self.retry_after_s} s."
        )


class SlidingMinute:
    """Sums over the last 60 seconds, in one-second buckets (``now_s`` from any steady clock)."""

    __slots__ = ("_buckets", "_expired_at", "_seconds", "_total")

    def __init__(self) -> None:
        self._buckets = [0] * WINDOW_S
        self._seconds = [-1] * WINDOW_S
        self._total = 0
        self._expired_at = -1  # the second of the last sweep: within one second, nothing expires

    def add(self, now_s: float, amount: int = 1) -> None:
        second = int(now_s)
        slot = second % WINDOW_S
        if self._seconds[slot] != second:
            self._expire(second)
            self._seconds[slot] = second
            self._buckets[slot] = 0
        self._buckets[slot] += amount
        self._total += amount

    def total(self, now_s: float) -> int:
        self._expire(int(now_s))
        return self._total

    def seconds_until_below(self, now_s: float, limit: int) -> int:
        """Seconds until the sum falls below ``limit`` with nothing more added (at least 1)."""
        second = int(now_s)
        self._expire(second)
        running = self._total
        for age in range(WINDOW_S - 1, -1, -1):  # oldest first
            slot_second = second - age
            slot = slot_second % WINDOW_S
            if self._seconds[slot] == slot_second:
                running -= self._buckets[slot]
                if running < limit:
                    return max(1, WINDOW_S - age)
        return 1

    def _expire(self, second: int) -> None:
        if second == self._expired_at:
            return
        self._expired_at = second
        for slot in range(WINDOW_S):
            seen = self._seconds[slot]
            if seen >= 0 and second - seen >= WINDOW_S:
                self._total -= self._buckets[slot]
                self._buckets[slot] = 0
                self._seconds[slot] = -1


def seconds_to_utc_midnight(now_epoch_s: float) -> int:
    return max(1, math.ceil(DAY_S - now_epoch_s % DAY_S))


def _first(value: T | None, default: T | None) -> T | None:
    return value if value is not None else default
