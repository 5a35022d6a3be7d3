"""Overview: what the proxy did in a period, in figures and charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from nexus.application.ports.dashboard_queries import DashboardQueries, Overview
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import MAX_PARAM, text

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@get("/", name="dashboard-overview")
async def overview_page(
    dashboard_queries: NamedDependency[DashboardQueries],
    period: Annotated[str, QueryParameter(description="1h, 24h, 7d or 30d")] = "24h",
    domain: Annotated[str | None, QueryParameter(description="Only this domain")] = None,
) -> Template:
    period = period if period in PERIODS else "24h"
    domain = text(domain, limit=MAX_PARAM)
    until = datetime.now(UTC)
    overview: Overview | None = None
    unavailable: str | None = None
    try:
        overview = await dashboard_queries.overview(until - PERIODS[period], until, domain=domain)
    except QueriesUnavailable as exc:
        unavailable = str(exc)
    context = await page_context(
        "overview",
        dashboard_queries,
        domain=domain,
        keep={"period": period},
        period=period,
        periods=list(PERIODS),
        overview=overview,
        unavailable=unavailable,
        charts=_charts(overview) if overview else None,
    )
    return Template("overview.html", context=context)


def _charts(overview: Overview) -> dict[str, Any]:
    """Chart.js inputs, handed to the page as JSON data attributes (no inline script)."""
    hours = [point.hour.strftime("%m-%d %H:00") for point in overview.hourly]
    return {
        "requests": {
            "type": "bar",
            "labels": hours,
            "series": [
                {"label": "Requests", "data": [p.requests for p in overview.hourly]},
                {"label": "Errors", "data": [p.errors for p in overview.hourly]},
            ],
        },
        "tokens": {
            "type": "line",
            "labels": hours,
            "series": [
                {"label": "Input", "data": [p.input_tokens for p in overview.hourly]},
                {"label": "Output", "data": [p.output_tokens for p in overview.hourly]},
                {"label": "Cache read", "data": [p.cache_read_input_tokens for p in overview.hourly]},
                {"label": "Cache write", "data": [p.cache_creation_input_tokens for p in overview.hourly]},
            ],
        },
        "models": {
            "type": "doughnut",
            "labels": [group.name or "unknown" for group in overview.by_model],
            "series": [{"label": "Requests", "data": [group.requests for group in overview.by_model]}],
        },
        "types": {
            "type": "doughnut",
            "labels": [group.name or "other" for group in overview.by_request_type],
            "series": [{"label": "Requests", "data": [group.requests for group in overview.by_request_type]}],
        },
    }
