"""Overview: what the proxy did in a period, in figures and charts, refreshed every 10 s.

The page polls itself with htmx (``hx-trigger="every 10s"``) and gets back only its figures
(``overview_figures.html``): a poll works under the strict CSP with no script of its own,
in a ``--role dashboard`` process too, and costs one read of the hourly rollup however much
traffic there is (the live feed would ask for one per request).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from nexus.application.ports.dashboard_queries import DashboardQueries, Overview
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.domain.time_buckets import Step
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import MAX_PARAM, text, wants_fragment
from nexus.entrypoints.dashboard.render.overview_charts import overview_charts

REFRESH_S = 10


class Period(msgspec.Struct, frozen=True):
    length: timedelta
    step: Step  # the charts' bucket: some tens to a couple of hundred of them per period


PERIODS = {
    "1h": Period(timedelta(hours=1), "minute"),
    "24h": Period(timedelta(hours=24), "hour"),
    "7d": Period(timedelta(days=7), "hour"),
    "30d": Period(timedelta(days=30), "day"),
}


@get("/", name="dashboard-overview")
async def overview_page(
    request: Request[Any, Any, Any],
    dashboard_queries: NamedDependency[DashboardQueries],
    period: Annotated[str, QueryParameter(description="1h, 24h, 7d or 30d")] = "24h",
    domain: Annotated[str | None, QueryParameter(description="Only this domain")] = None,
) -> Template:
    period = period if period in PERIODS else "24h"
    chosen = PERIODS[period]
    domain = text(domain, limit=MAX_PARAM)
    until = datetime.now(UTC)
    overview: Overview | None = None
    unavailable: str | None = None
    try:
        overview = await dashboard_queries.overview(until - chosen.length, until, domain=domain, step=chosen.step)
    except QueriesUnavailable as exc:
        unavailable = str(exc)
    values = {
        "period": period,
        "step": chosen.step,
        "refresh_s": REFRESH_S,
        "overview": overview,
        "unavailable": unavailable,
        "charts": overview_charts(overview) if overview else None,
    }
    headers = {"vary": "HX-Request"}
    if wants_fragment(request):
        # htmx does not swap error statuses: an outage comes as 200 with its message inside.
        return Template("overview_figures.html", context={"domain": domain, **values}, headers=headers)
    context = await page_context(
        "overview", dashboard_queries, domain=domain, keep={"period": period}, periods=list(PERIODS), **values
    )
    return Template("overview.html", context=context, headers=headers)
