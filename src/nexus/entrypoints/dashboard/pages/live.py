"""Live: requests appear as they complete, in every process, over Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import ExchangeQueries, QueriesUnavailable, RequestFilters
from nexus.application.ports.live_feed import LiveFeed, LiveUpdate
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import MAX_PARAM, text
from nexus.entrypoints.lifecycle import Lifecycle

SHOWN = 50  # rows on the page; the browser keeps at most this many as new ones arrive
KEEPALIVE_S = 15.0
_TICK_S = 1.0  # how often a stream notices the process shutting down


@get("/live", name="dashboard-live")
async def live_page(
    exchange_queries: NamedDependency[ExchangeQueries],
    dashboard_queries: NamedDependency[DashboardQueries],
    domain: Annotated[str | None, QueryParameter(description="Only this domain")] = None,
) -> Template:
    domain = text(domain, limit=MAX_PARAM)
    unavailable = None
    rows: list[Any] = []
    try:
        page = await exchange_queries.list_requests(RequestFilters(domain=domain), limit=SHOWN, offset=0)
        rows = page.requests
    except QueriesUnavailable as exc:
        unavailable = str(exc)
    context = await page_context(
        "live", dashboard_queries, domain=domain, rows=rows, unavailable=unavailable, shown=SHOWN
    )
    return Template("live.html", context=context)


@get("/live/events", name="dashboard-live-events")
async def live_events(
    request: Request[Any, Any, Any],
    live_feed: NamedDependency[LiveFeed | None],
    lifecycle: NamedDependency[Lifecycle],
    domain: Annotated[str | None, QueryParameter(description="Only this domain")] = None,
) -> ServerSentEvent:
    """``request`` events carry table rows (HTML rendered with escaping) for the live table;
    ``status`` events say whether the feed hears the database; ``gap`` asks for a reload."""
    template = request.app.template_engine.get_template("live_row.html")  # type: ignore[union-attr]
    domain = text(domain, limit=MAX_PARAM)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        if live_feed is None:  # storage is off: nothing is recorded, so nothing can be shown
            yield ServerSentEventMessage(event="status", data="offline", retry=60_000)
            return
        async with live_feed.subscribe() as updates:
            waited = 0.0
            while not lifecycle.draining:
                try:
                    update: LiveUpdate = await asyncio.wait_for(anext(updates), _TICK_S)
                except TimeoutError:
                    waited += _TICK_S
                    if waited >= KEEPALIVE_S:
                        waited = 0.0
                        yield ServerSentEventMessage(comment="keep-alive")
                    continue
                except StopAsyncIteration:
                    return
                waited = 0.0
                for message in _messages(update, template, domain):
                    yield message

    return ServerSentEvent(events(), headers={"x-accel-buffering": "no"})


def _messages(update: LiveUpdate, template: Any, domain: str | None) -> list[ServerSentEventMessage]:
    messages = [ServerSentEventMessage(event="status", data="live" if update.live else "offline")]
    if update.gap:
        messages.append(ServerSentEventMessage(event="gap", data="reload"))
    for row in update.requests:
        if domain is None or row.domain == domain:
            html = template.render(row=row, fresh=True)
            messages.append(ServerSentEventMessage(event="request", data=" ".join(html.split())))
    return messages
