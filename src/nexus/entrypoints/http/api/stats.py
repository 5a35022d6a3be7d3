"""Management API routes: totals and breakdowns over a time window, and the domains seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from litestar.types import ControllerRouterHandler

from nexus.application.ports.exchange_queries import DomainPage, ExchangeQueries, QueriesUnavailable, Stats
from nexus.entrypoints.http.api.params import (
    API_SECURITY,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    api_errors,
    clear_validation_errors,
    iso_timestamps,
    storage_unavailable,
    utc,
)

DEFAULT_STATS_WINDOW = timedelta(hours=24)
DEFAULT_DOMAIN_DAYS = 7
MAX_DOMAIN_DAYS = 3660


class StatsController(Controller):
    path = "/"
    tags = ["stats"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {  # noqa: RUF012 -- as above
        QueriesUnavailable: storage_unavailable,
        ValidationException: clear_validation_errors({}),
    }

    @get("/stats", operation_id="GetStats", summary="Totals and breakdowns over a time window",
         responses=api_errors(400, 503))  # fmt: skip
    async def stats(
        self,
        request: Request[Any, Any, Any],
        exchange_queries: NamedDependency[ExchangeQueries],
        since: Annotated[
            datetime | None, QueryParameter(description="ISO 8601, inclusive; default: until - 24 h")
        ] = None,
        until: Annotated[datetime | None, QueryParameter(description="ISO 8601, exclusive; default: now")] = None,
    ) -> Stats:
        """Requests, errors, tokens, cost and average durations, in total and by model, request
        type and domain (busiest first). Costs are exact decimal strings."""
        iso_timestamps(request, "since", "until")
        end = utc(until) or datetime.now(UTC)
        start = utc(since) or end - DEFAULT_STATS_WINDOW
        if start >= end:
            raise ValidationException(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
        return await exchange_queries.stats(start, end)

    @get("/domains", operation_id="ListDomains", summary="Domains with their request counts",
         responses=api_errors(400, 503))  # fmt: skip
    async def domains(
        self,
        exchange_queries: NamedDependency[ExchangeQueries],
        days: Annotated[int, QueryParameter(ge=1, le=MAX_DOMAIN_DAYS, description="Look back this many days")] = (
            DEFAULT_DOMAIN_DAYS
        ),
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> DomainPage:
        """Each domain that sent requests in the last ``days`` days, busiest first."""
        since = datetime.now(UTC) - timedelta(days=days)
        return await exchange_queries.domains(since, limit=limit, offset=offset)


STATS_HANDLERS: list[ControllerRouterHandler] = [StatsController]
