"""Usage: each account's 5-hour window (the proxy's ledger beside Anthropic's unified headers),
its daily history, tokens per hour by domain, cost allocation, and a CSV/JSON export of what
each section shows.

The page and the export build the same rows (``AccountRow``, ``DayRow``, ``AllocationRow``)
from the same parameters: an export is exactly the rows of its section on screen.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from nexus.application.ports.dashboard_queries import DashboardQueries, DayPoint, DomainHourPoint
from nexus.application.ports.exchange_queries import QueriesUnavailable, UsageGroup
from nexus.application.ports.usage_queries import UsageUnavailable
from nexus.application.use_cases.account_usage import (
    AccountsReport,
    AccountUsage,
    AnthropicView,
    Totals,
    UsageReports,
)
from nexus.domain.credentials import AccountLimits
from nexus.domain.rate_limits import ALERT_STATUSES
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.formatting import decimal
from nexus.entrypoints.dashboard.params import MAX_PARAM, text
from nexus.entrypoints.http.api.requests import _csv_cell

DAYS = (7, 14, 30)
DEFAULT_DAYS = 30
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "24h"
NEAR_LIMIT_PERCENT = 80.0
HOURS = 24
HOURLY_DOMAINS = 6  # the busiest domains get a line each; the rest are summed as "other"
LIMIT_NAMES: tuple[str, ...] = AccountLimits.__struct_fields__
LIMIT_LABELS = {
    "five_hour_output_tokens": "5 h output tokens",
    "five_hour_cost_usd": "5 h cost",
    "seven_day_output_tokens": "7 d output tokens",
    "seven_day_cost_usd": "7 d cost",
}
Section = Literal["accounts", "daily", "allocation"]
ExportFormat = Literal["csv", "json"]
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
TOTAL_COLUMNS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
)
ANTHROPIC_COLUMNS = (
    "anthropic_status",
    "anthropic_resets_at",
    "anthropic_5h_status",
    "anthropic_5h_utilization",
    "anthropic_5h_resets_at",
    "anthropic_7d_status",
    "anthropic_7d_utilization",
    "anthropic_7d_resets_at",
    "anthropic_seen_at",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": (
        "account_id",
        "domains",
        *TOTAL_COLUMNS,
        *(f"{name}_{part}" for name in LIMIT_NAMES for part in ("limit", "used", "percent")),
        *ANTHROPIC_COLUMNS,
        "warnings",
    ),
    "daily": ("date", *TOTAL_COLUMNS),
    "allocation": ("dimension", "name", *TOTAL_COLUMNS, "cost_share_percent"),
}


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


@get("/usage", name="dashboard-usage")
async def usage_page(
    *,
    dashboard_queries: NamedDependency[DashboardQueries],
    usage_reports: NamedDependency[UsageReports],
    domain: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    days: FromQuery[str] = str(DEFAULT_DAYS),
    period: FromQuery[str] = DEFAULT_PERIOD,
) -> Template:
    params = UsageParams.parse(domain=domain, account=account, days=days, period=period)
    now = datetime.now(UTC)
    usage_unavailable: str | None = None
    queries_unavailable: str | None = None
    accounts: Accounts | None = None
    allocation: Allocation | None = None
    daily: list[DayRow] | None = None
    hourly: dict[str, Any] | None = None
    try:
        accounts = await _accounts(usage_reports, params.domain)
    except UsageUnavailable as exc:
        usage_unavailable = str(exc)
    try:
        allocation = await _allocation(dashboard_queries, params, now)
        hourly = await _hourly_chart(dashboard_queries, params.domain, now)
    except QueriesUnavailable as exc:
        queries_unavailable = str(exc)
    choices = _account_choices(accounts, allocation)
    selected = params.account or (choices[0] if choices else None)
    if selected and selected not in choices:
        choices = [selected, *choices]
    if selected and queries_unavailable is None:
        try:
            daily = await _daily(dashboard_queries, selected, params, now)
        except QueriesUnavailable as exc:
            queries_unavailable = str(exc)
    shown = msgspec.structs.replace(params, account=selected)
    context = await page_context(
        "usage",
        dashboard_queries,
        domain=params.domain,
        keep={"account": params.account, "days": params.days, "period": params.period},
        params=shown,
        days_choices=DAYS,
        periods=list(PERIODS),
        accounts=accounts,
        account=selected,
        account_choices=choices,
        daily=daily,
        daily_chart=_daily_chart(daily) if daily is not None else None,
        hourly_chart=hourly,
        allocation=allocation,
        usage_unavailable=usage_unavailable,
        queries_unavailable=queries_unavailable,
        near_percent=NEAR_LIMIT_PERCENT,
        now=now,
    )
    return Template("usage.html", context=context)


@get("/usage/export", name="dashboard-usage-export")
async def usage_export(
    *,
    dashboard_queries: NamedDependency[DashboardQueries],
    usage_reports: NamedDependency[UsageReports],
    section: FromQuery[Section],
    export_format: Annotated[ExportFormat, QueryParameter(name="format")] = "csv",
    domain: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    days: FromQuery[str] = str(DEFAULT_DAYS),
    period: FromQuery[str] = DEFAULT_PERIOD,
) -> Response[bytes]:
    """The rows of one section as the page shows them for the same parameters."""
    params = UsageParams.parse(domain=domain, account=account, days=days, period=period)
    now = datetime.now(UTC)
    try:
        rows, name = await _export_rows(section, dashboard_queries, usage_reports, params, now)
    except (UsageUnavailable, QueriesUnavailable) as exc:
        return Response(f"Usage is unavailable: {exc}".encode(), status_code=503, media_type="text/plain")
    filename = f"{name}.{export_format}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    if export_format == "json":
        return Response(msgspec.json.encode(rows), media_type="application/json", headers=headers)
    return Response(_csv(COLUMNS[section], rows).encode(), media_type="text/csv", headers=headers)


async def _export_rows(
    section: Section,
    dashboard_queries: NamedDependency[DashboardQueries],
    usage_reports: NamedDependency[UsageReports],
    params: UsageParams,
    now: datetime,
) -> tuple[list[dict[str, Any]], str]:
    suffix = f"-{_safe_filename(params.domain)}" if params.domain else ""
    if section == "accounts":
        accounts = await _accounts(usage_reports, params.domain)
        return [row.export() for row in accounts.rows], f"usage-accounts{suffix}"
    if section == "allocation":
        allocation = await _allocation(dashboard_queries, params, now)
        return [row.export() for row in allocation.rows], f"usage-allocation-{params.period}{suffix}"
    selected = params.account or await _default_account(usage_reports, dashboard_queries, params, now)
    if selected is None:
        return [], f"usage-daily-{params.days}d{suffix}"
    rows = await _daily(dashboard_queries, selected, params, now)
    return [row.export() for row in rows], f"usage-daily-{_safe_filename(selected)}-{params.days}d{suffix}"


async def _default_account(
    reports: UsageReports, queries: DashboardQueries, params: UsageParams, now: datetime
) -> str | None:
    """The page's default: the first account it lists (read only as far as needed)."""
    accounts = await _accounts(reports, params.domain)
    if accounts.rows:
        return accounts.rows[0].account_id
    choices = _account_choices(None, await _allocation(queries, params, now))
    return choices[0] if choices else None


async def _accounts(reports: UsageReports, domain: str | None) -> Accounts:
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


async def _daily(queries: DashboardQueries, account_id: str, params: UsageParams, now: datetime) -> list[DayRow]:
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


async def _allocation(queries: DashboardQueries, params: UsageParams, now: datetime) -> Allocation:
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


def _account_choices(accounts: Accounts | None, allocation: Allocation | None) -> list[str]:
    """The accounts of the 5-hour table first, then the others with costs in the period."""
    found: list[str] = [row.account_id for row in accounts.rows] if accounts else []
    for row in allocation.by_account if allocation else []:
        if row.name and row.name not in found:
            found.append(row.name)
    return found


async def _hourly_chart(queries: DashboardQueries, domain: str | None, now: datetime) -> dict[str, Any]:
    """Input + output tokens per hour over the last 24 hours, one line per domain: the busiest
    ``HOURLY_DOMAINS`` of all accounts (or only the filtered domain), the rest summed as
    "other". One read: the sums of each domain and hour."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    hours = [first + timedelta(hours=n) for n in range(HOURS)]
    points = await queries.hourly_by_domain(first, now, domain=domain)
    series: list[dict[str, Any]] = []
    if domain is not None:
        series.append({"label": domain, "data": _per_hour(points, hours)})
    else:
        rest = _per_hour(points, hours)
        requests: dict[str | None, int] = {}
        for point in points:
            requests[point.domain] = requests.get(point.domain, 0) + point.requests
        ranked = sorted(requests, key=lambda name: (-requests[name], name or ""))
        busiest = [name for name in ranked if name][:HOURLY_DOMAINS]
        for name in busiest:
            data = _per_hour([point for point in points if point.domain == name], hours)
            series.append({"label": name, "data": data})
            rest = [left - used for left, used in zip(rest, data, strict=True)]
        if any(rest):
            series.append({"label": "other", "data": rest})
    return {"type": "line", "labels": [hour.strftime("%m-%d %H:00") for hour in hours], "series": series}


def _per_hour(points: Sequence[DomainHourPoint], hours: list[datetime]) -> list[int]:
    found: dict[datetime, int] = {}
    for point in points:
        hour = _hour(point)
        found[hour] = found.get(hour, 0) + point.input_tokens + point.output_tokens
    return [found.get(hour, 0) for hour in hours]


def _hour(point: DomainHourPoint) -> datetime:
    instant = point.hour if point.hour.tzinfo else point.hour.replace(tzinfo=UTC)
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _daily_chart(rows: list[DayRow]) -> dict[str, Any]:
    return {
        "type": "bar",
        "labels": [row.date for row in rows],
        "series": [
            {"label": "Input", "data": [row.totals.input_tokens for row in rows]},
            {"label": "Output", "data": [row.totals.output_tokens for row in rows]},
        ],
    }


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "cache_creation_input_tokens": totals.cache_creation_input_tokens,
        "cache_read_input_tokens": totals.cache_read_input_tokens,
        "cost_usd": totals.cost_usd,
    }


def _csv(columns: Sequence[str], rows: list[dict[str, Any]]) -> str:
    """A header row, then one line per row; lists are joined with ``; ``, and every cell a
    spreadsheet would run as a formula gets a leading ``'`` (as the requests export does)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in msgspec.to_builtins(rows):
        writer.writerow([_csv_cell(_flat(row[column])) for column in columns])
    return buffer.getvalue()


def _flat(value: object) -> object:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return value


def _cost(value: str) -> Decimal:
    """A stored cost to sort and share by; one that cannot be read counts as nothing."""
    return decimal(value) or Decimal(0)


def _safe_filename(value: str) -> str:
    return _UNSAFE_FILENAME.sub("_", value).strip("._")[:64] or "x"
