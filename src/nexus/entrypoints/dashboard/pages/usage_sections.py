"""The usage page's sections as rows: each account's 5-hour window (the proxy's ledger beside
Anthropic's unified headers), its daily history and the cost allocation.

The page and the export build the same rows (``AccountRow``, ``DayRow``, ``AllocationRow``)
from the same ``UsageParams``: an export is exactly the rows of its section on screen (the
daily table shows them newest first with quiet days folded, ``usage_daily``; the export has
every day, oldest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from nexus.application.ports.dashboard_queries import DashboardQueries, DayPoint
from nexus.application.ports.exchange_queries import UsageGroup
from nexus.application.use_cases.account_usage import (
    AccountsReport,
    AccountUsage,
    AnthropicView,
    Totals,
    UsageReports,
)
from nexus.domain.credentials import LIMIT_LABELS, WINDOW_LIMITS
from nexus.domain.rate_limits import ALERT_STATUSES
from nexus.entrypoints.dashboard.formatting import decimal
from nexus.entrypoints.dashboard.params import MAX_PARAM, text

DAYS = (7, 14, 30)
DEFAULT_DAYS = 30
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "24h"
NEAR_LIMIT_PERCENT = 80.0
LIMIT_NAMES: tuple[str, ...] = WINDOW_LIMITS


class UsageParams(msgspec.Struct, frozen=True, kw_only=True):
    """The page's parameters, normalised: unknown choices fall back to the defaults."""

    domain: str | None
    account: str | None
    days: int
    period: str

    @classmethod
    def parse(cls, *, domain: str | None, account: str | None, days: str, period: str) -> UsageParams:
        return cls(
            domain=text(domain, limit=MAX_PARAM),
            account=text(account, limit=MAX_PARAM),
            days=int(days) if days in {str(d) for d in DAYS} else DEFAULT_DAYS,
            period=period if period in PERIODS else DEFAULT_PERIOD,
        )

    def query(self, **changes: object) -> str:
        """``?domain=...&account=...`` with ``changes`` applied; empty values are left out."""
        values: dict[str, object] = {
            "domain": self.domain,
            "account": self.account,
            "days": self.days,
            "period": self.period,
        }
        values.update(changes)
        return "?" + urlencode({name: value for name, value in values.items() if value not in (None, "")})


class LimitCell(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    label: str
    limit: int | float
    used: int | float
    percent: float
    state: Literal["ok", "near", "over"]


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    """One account over the trailing 5 hours: the ledger, its limits, Anthropic's view."""

    account_id: str
    domains: list[str | None]
    totals: Totals
    limits: list[LimitCell]
    anthropic: AnthropicView | None
    warnings: list[str]

    def export(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "account_id": self.account_id,
            "domains": [domain or "" for domain in self.domains],
            **_totals(self.totals),
        }
        by_name = {cell.name: cell for cell in self.limits}
        for name in LIMIT_NAMES:
            cell = by_name.get(name)
            row[f"{name}_limit"] = cell.limit if cell else None
            row[f"{name}_used"] = cell.used if cell else None
            row[f"{name}_percent"] = cell.percent if cell else None
        view = self.anthropic
        row.update(
            {
                "anthropic_status": view.status if view else None,
                "anthropic_resets_at": view.resets_at if view else None,
                "anthropic_5h_status": view.five_hour.status if view else None,
                "anthropic_5h_utilization": view.five_hour.utilization if view else None,
                "anthropic_5h_resets_at": view.five_hour.resets_at if view else None,
                "anthropic_7d_status": view.seven_day.status if view else None,
                "anthropic_7d_utilization": view.seven_day.utilization if view else None,
                "anthropic_7d_resets_at": view.seven_day.resets_at if view else None,
                "anthropic_seen_at": view.seen_at if view else None,
                "warnings": list(self.warnings),
            }
        )
        return row


class DayRow(msgspec.Struct, frozen=True, kw_only=True):
    date: str
    totals: Totals

    def export(self) -> dict[str, Any]:
        return {"date": self.date, **_totals(self.totals)}


class AllocationRow(msgspec.Struct, frozen=True, kw_only=True):
    dimension: Literal["domain", "account", "model"]
    name: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str
    cost_share_percent: float | None

    def export(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class Accounts(msgspec.Struct, frozen=True, kw_only=True):
    window_start: datetime
    window_end: datetime
    rows: list[AccountRow]


class Allocation(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    until: datetime
    totals_cost_usd: str
    totals_requests: int
    by_domain: list[AllocationRow]
    by_account: list[AllocationRow]
    by_model: list[AllocationRow]

    @property
    def rows(self) -> list[AllocationRow]:
        return [*self.by_domain, *self.by_account, *self.by_model]


async def read_accounts(reports: UsageReports, domain: str | None) -> Accounts:
    """Every account with traffic in the last 5 hours; with a domain, those that served it."""
    report: AccountsReport = await reports.accounts()
    rows = [
        _account_row(usage)
        for usage in report.accounts
        if domain is None or any(entry.domain == domain for entry in usage.domains)
    ]
    return Accounts(window_start=report.window.start, window_end=report.window.end, rows=rows)


def _account_row(usage: AccountUsage) -> AccountRow:
    cells = []
    for name in LIMIT_NAMES:
        use = usage.limits.get(name)
        if use is None:
            continue
        state: Literal["ok", "near", "over"] = "ok"
        if use.percentage_used >= 100:
            state = "over"
        elif use.percentage_used >= NEAR_LIMIT_PERCENT:
            state = "near"
        cells.append(
            LimitCell(
                name=name,
                label=LIMIT_LABELS.get(name, name),
                limit=use.limit,
                used=use.used,
                percent=use.percentage_used,
                state=state,
            )
        )
    warnings = [f"{cell.label} {cell.state} limit" for cell in cells if cell.state != "ok"]
    view = usage.anthropic
    if view is not None:
        for status in (view.status, view.five_hour.status, view.seven_day.status):
            if status in ALERT_STATUSES and status not in warnings:
                warnings.append(status)
    return AccountRow(
        account_id=usage.account_id,
        domains=[entry.domain for entry in usage.domains],
        totals=usage.totals,
        limits=cells,
        anthropic=view,
        warnings=warnings,
    )


async def read_daily(queries: DashboardQueries, account_id: str, params: UsageParams, now: datetime) -> list[DayRow]:
    """One row per UTC day, today included, oldest first; days without traffic are zeros."""
    first = now.date() - timedelta(days=params.days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    found = {point.day: point for point in await queries.daily(account_id, since, now, domain=params.domain)}
    days = (first + timedelta(days=n) for n in range(params.days))
    return [DayRow(date=day.isoformat(), totals=_day_totals(found.get(day))) for day in days]


def _day_totals(point: DayPoint | None) -> Totals:
    if point is None:
        return Totals(
            requests=0,
            input_tokens=0,
            output_tokens=0,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=0,
            cost_usd="0.000000000",
            unpriced_requests=0,
        )
    return Totals(
        requests=point.requests,
        input_tokens=point.input_tokens,
        output_tokens=point.output_tokens,
        cache_creation_input_tokens=point.cache_creation_input_tokens,
        cache_read_input_tokens=point.cache_read_input_tokens,
        cost_usd=point.cost_usd,
        unpriced_requests=point.unpriced_requests,
    )


async def read_allocation(queries: DashboardQueries, params: UsageParams, now: datetime) -> Allocation:
    overview = await queries.overview(now - PERIODS[params.period], now, domain=params.domain)
    total = _cost(overview.totals.cost_usd)

    def rows(dimension: Literal["domain", "account", "model"], groups: Sequence[UsageGroup]) -> list[AllocationRow]:
        """Costliest first; ties by requests, then name, so the page and the export agree."""
        ordered = sorted(groups, key=lambda g: (-_cost(g.cost_usd), -g.requests, g.name is None, g.name or ""))
        return [
            AllocationRow(
                dimension=dimension,
                name=group.name,
                requests=group.requests,
                input_tokens=group.input_tokens,
                output_tokens=group.output_tokens,
                cache_creation_input_tokens=group.cache_creation_input_tokens,
                cache_read_input_tokens=group.cache_read_input_tokens,
                cost_usd=group.cost_usd,
                cost_share_percent=round(float(_cost(group.cost_usd) / total * 100), 1) if total else None,
            )
            for group in ordered
        ]

    return Allocation(
        since=overview.since,
        until=overview.until,
        totals_cost_usd=overview.totals.cost_usd,
        totals_requests=overview.totals.requests,
        by_domain=rows("domain", overview.by_domain),
        by_account=rows("account", overview.by_account),
        by_model=rows("model", overview.by_model),
    )


def account_choices(accounts: Accounts | None, allocation: Allocation | None) -> list[str]:
    """The accounts of the 5-hour table first, then the others with costs in the period."""
    found: list[str] = [row.account_id for row in accounts.rows] if accounts else []
    for row in allocation.by_account if allocation else []:
        if row.name and row.name not in found:
            found.append(row.name)
    return found


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_creation_input_tokens": totals.cache_creation_input_tokens,
        "cache_read_input_tokens": totals.cache_read_input_tokens,
        "cost_usd": totals.cost_usd,
    }


def _cost(value: str) -> Decimal:
    """A stored cost to sort and share by; one that cannot be read counts as nothing."""
    return decimal(value) or Decimal(0)
