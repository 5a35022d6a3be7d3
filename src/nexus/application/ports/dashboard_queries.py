"""What the dashboard reads: totals, breakdowns and series for a period, per hour or per day.

These are read from an hourly rollup, so periods are whole UTC hours: ``since`` is rounded
down to its hour, and the hour holding ``until`` counts whole (``until`` is normally now, so
nothing later exists). A period of the last 24 hours asked at 10:20 covers 10:00 yesterday
until now.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol, runtime_checkable

import msgspec

from nexus.application.ports.exchange_queries import UsageGroup, UsageTotals
from nexus.domain.time_buckets import Step


class PointSums(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str


class SeriesPoint(PointSums, frozen=True, kw_only=True):
    """One bucket of a series: a UTC minute, hour or day from ``start``."""

    start: datetime


class DomainHourPoint(PointSums, frozen=True, kw_only=True):
    """One hour of one domain."""

    hour: datetime
    domain: str | None


class DayPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One UTC day. ``unpriced_requests``: requests with tokens but no cost (``cost_usd``
    leaves them out), as in ``usage_queries.TokenTotals``."""

    day: date
    requests: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str
    unpriced_requests: int


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """One period (``since`` inclusive, rounded down to its hour; ``until`` exclusive),
    optionally one domain. ``series`` has every ``step`` bucket of the period, oldest first,
    zeros where nothing was recorded, up to the last one starting before ``until``."""

    since: datetime
    until: datetime
    domain: str | None
    totals: UsageTotals
    by_model: list[UsageGroup]
    by_request_type: list[UsageGroup]
    by_domain: list[UsageGroup]
    by_account: list[UsageGroup]
    step: Step
    series: list[SeriesPoint]


@runtime_checkable
class DashboardQueries(Protocol):
    """Every method raises ``QueriesUnavailable`` when nothing can be read; periods are whole
    hours (see the module's docstring)."""

    async def overview(self, since: datetime, until: datetime, *, domain: str | None, step: Step = "hour") -> Overview:
        """Totals, the breakdowns (busiest first) and the series of ``step`` buckets. The
        minutes are read from the exchanges themselves (the rollup has hours), in the same
        snapshot as the totals, so they agree."""
        ...

    async def hourly_by_domain(self, since: datetime, until: datetime, *, domain: str | None) -> list[DomainHourPoint]:
        """Each hour's sums per domain, for the hours and domains with requests: oldest hour
        first, domains by name (no domain last)."""
        ...

    async def daily(self, account_id: str, since: datetime, until: datetime, *, domain: str | None) -> list[DayPoint]:
        """One account's sums per UTC day, for the days with requests, oldest first."""
        ...

    async def domains(self, since: datetime) -> list[str]:
        """Domains with requests since ``since``, busiest first (at most 200)."""
        ...
