"""What the dashboard's overview reads: totals, breakdowns and an hourly series for a period."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from nexus.application.ports.exchange_queries import UsageGroup, UsageTotals


class HourPoint(msgspec.Struct, frozen=True, kw_only=True):
    hour: datetime
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """One period (``since`` inclusive, ``until`` exclusive), optionally one domain."""

    since: datetime
    until: datetime
    domain: str | None
    totals: UsageTotals
    by_model: list[UsageGroup]
    by_request_type: list[UsageGroup]
    by_domain: list[UsageGroup]
    by_account: list[UsageGroup]
    hourly: list[HourPoint]


@runtime_checkable
class DashboardQueries(Protocol):
    async def overview(self, since: datetime, until: datetime, *, domain: str | None) -> Overview:
        """Raises ``QueriesUnavailable`` when nothing can be read."""
        ...

    async def domains(self, since: datetime) -> list[str]:
        """Domains with requests since ``since``, busiest first (at most 200)."""
        ...
