"""Usage: each account's 5-hour window, its daily history, tokens per hour by domain and cost
allocation (rows from ``usage_sections``, charts from ``render.usage_charts``, downloads from
``usage_export``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from nexus.application.account_pool import AccountPool, StoredWindow, pool_views
from nexus.application.ports.credential_store import CredentialStore
from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.limit_alerts import AlertLedger, SentAlert
from nexus.application.ports.usage_queries import UsageUnavailable
from nexus.application.use_cases.account_usage import UsageReports
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.pages.usage_daily import daily_lines
from nexus.entrypoints.dashboard.pages.usage_sections import (
    DAYS,
    DEFAULT_DAYS,
    DEFAULT_PERIOD,
    NEAR_LIMIT_PERCENT,
    PERIODS,
    Accounts,
    Allocation,
    DayRow,
    UsageParams,
    account_choices,
    read_accounts,
    read_allocation,
    read_daily,
)
from nexus.entrypoints.dashboard.render.usage_charts import daily_chart, hourly_chart

ALERTS_SHOWN_FOR = timedelta(hours=24)


@get("/usage", name="dashboard-usage")
async def usage_page(
    *,
    dashboard_queries: NamedDependency[DashboardQueries],
    usage_reports: NamedDependency[UsageReports],
    alert_ledger: NamedDependency[AlertLedger],
    credential_store: NamedDependency[CredentialStore],
    account_pool: NamedDependency[AccountPool | None],
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
        accounts = await read_accounts(usage_reports, params.domain)
    except UsageUnavailable as exc:
        usage_unavailable = str(exc)
    try:
        allocation = await read_allocation(dashboard_queries, params, now)
        hourly = await hourly_chart(dashboard_queries, params.domain, now)
    except QueriesUnavailable as exc:
        queries_unavailable = str(exc)
    alerts: list[SentAlert] | None = None
    alerts_unavailable: str | None = None
    try:
        alerts = await alert_ledger.recent(now - ALERTS_SHOWN_FOR, domain=params.domain)
    except QueriesUnavailable as exc:
        alerts_unavailable = str(exc)
    pools = await pool_views(
        credential_store, account_pool, now_s=now.timestamp(), recorded=_recorded_windows(accounts)
    )
    choices = account_choices(accounts, allocation)
    selected = params.account or (choices[0] if choices else None)
    if selected and selected not in choices:
        choices = [selected, *choices]
    if selected and queries_unavailable is None:
        try:
            daily = await read_daily(dashboard_queries, selected, params, now)
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
        daily_lines=daily_lines(daily) if daily is not None else None,
        daily_chart=daily_chart(daily) if daily is not None else None,
        hourly_chart=hourly,
        allocation=allocation,
        usage_unavailable=usage_unavailable,
        queries_unavailable=queries_unavailable,
        near_percent=NEAR_LIMIT_PERCENT,
        alerts=alerts,
        alerts_unavailable=alerts_unavailable,
        pools=[pool for pool in pools if not params.domain or pool.domain == params.domain],
        pools_recorded=account_pool is None,
        now=now,
    )
    return Template("usage.html", context=context)


def _recorded_windows(accounts: Accounts | None) -> dict[str, StoredWindow]:
    """Each account's newest recorded unified headers (for a dashboard serving no traffic)."""
    if accounts is None:
        return {}
    return {
        account.account_id: StoredWindow(
            utilization=account.anthropic.five_hour.utilization,
            status=account.anthropic.status,
            resets_at=account.anthropic.five_hour.resets_at or account.anthropic.resets_at,
        )
        for account in accounts.rows
        if account.anthropic is not None
    }
