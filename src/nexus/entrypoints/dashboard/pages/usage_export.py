"""The usage page's sections downloaded as CSV or JSON: the same rows the page shows for the
same parameters."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.usage_queries import UsageUnavailable
from nexus.application.use_cases.account_usage import UsageReports
from nexus.entrypoints.csv_cells import csv_cell
from nexus.entrypoints.dashboard.pages.usage_sections import (
    DEFAULT_DAYS,
    DEFAULT_PERIOD,
    LIMIT_NAMES,
    UsageParams,
    account_choices,
    read_accounts,
    read_allocation,
    read_daily,
)

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
        accounts = await read_accounts(usage_reports, params.domain)
        return [row.export() for row in accounts.rows], f"usage-accounts{suffix}"
    if section == "allocation":
        allocation = await read_allocation(dashboard_queries, params, now)
        return [row.export() for row in allocation.rows], f"usage-allocation-{params.period}{suffix}"
    selected = params.account or await _default_account(usage_reports, dashboard_queries, params, now)
    if selected is None:
        return [], f"usage-daily-{params.days}d{suffix}"
    rows = await read_daily(dashboard_queries, selected, params, now)
    return [row.export() for row in rows], f"usage-daily-{_safe_filename(selected)}-{params.days}d{suffix}"


async def _default_account(
    reports: UsageReports, queries: DashboardQueries, params: UsageParams, now: datetime
) -> str | None:
    """The page's default: the first account it lists (read only as far as needed)."""
    accounts = await read_accounts(reports, params.domain)
    if accounts.rows:
        return accounts.rows[0].account_id
    choices = account_choices(None, await read_allocation(queries, params, now))
    return choices[0] if choices else None


def _csv(columns: Sequence[str], rows: list[dict[str, Any]]) -> str:
    """A header row, then one line per row; lists are joined with ``; ``, and every cell a
    spreadsheet would run as a formula gets a leading ``'`` (as the requests export does)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in msgspec.to_builtins(rows):
        writer.writerow([csv_cell(_flat(row[column])) for column in columns])
    return buffer.getvalue()


def _flat(value: object) -> object:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return value


def _safe_filename(value: str) -> str:
    return _UNSAFE_FILENAME.sub("_", value).strip("._")[:64] or "x"
