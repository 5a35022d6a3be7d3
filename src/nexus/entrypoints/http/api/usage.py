"""Management API routes: token usage per account and domain, and ``/token-stats``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from nexus.application.ports.usage_queries import UsageFilter, UsageUnavailable
from nexus.application.token_accounting import TokenAccounting
from nexus.application.use_cases.account_usage import (
    MAX_DAYS,
    MAX_INTERVAL_MINUTES,
    MAX_WINDOW_HOURS,
    MAX_WINDOW_MINUTES,
    AccountsReport,
    CurrentReport,
    DailyReport,
    InvalidUsageQuery,
    SeriesReport,
    UsageReports,
)
from nexus.domain.pricing import cost_text
from nexus.domain.token_counters import DomainCounters
from nexus.entrypoints.http.api.params import API_SECURITY, api_errors, clear_validation_errors
from nexus.entrypoints.http.errors import http_exception_handler

_ACCOUNT = Parameter(description="The credential file's accountId, else the domain", min_length=1, max_length=255)
_DOMAIN = Parameter(description="Only this domain's exchanges", min_length=1, max_length=255)
_MODEL = Parameter(description="Only exchanges of this model (answered or requested)", min_length=1, max_length=255)


def _unavailable(request: Request[Any, Any, Any], exc: UsageUnavailable) -> Response[bytes]:
    return http_exception_handler(request, ServiceUnavailableException(detail=f"Usage is unavailable: {exc}"))


def _invalid(request: Request[Any, Any, Any], exc: InvalidUsageQuery) -> Response[bytes]:
    return http_exception_handler(request, ValidationException(detail=f"Invalid query: {exc}"))


class UsageController(Controller):
    """Per-account sums computed in SQL on the recorded exchanges (storage must be on)."""

    path = "/usage"
    tags = ["usage"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {  # noqa: RUF012 -- as above
        UsageUnavailable: _unavailable,
        InvalidUsageQuery: _invalid,
        ValidationException: clear_validation_errors({}),
    }

    @get("/accounts", operation_id="ListAccountUsage", summary="Every account with traffic in the last 5 hours",
         responses=api_errors(503))  # fmt: skip
    async def accounts(self, usage_reports: NamedDependency[UsageReports]) -> AccountsReport:
        """Per account over the trailing 5 hours: totals, the per-domain breakdown, each limit of
        its credential file with the share used (``limits``, empty when none is set), and the
        latest ``anthropic-ratelimit-unified-*`` view of the account (``anthropic``)."""
        return await usage_reports.accounts()

    @get("/current", operation_id="GetCurrentUsage", summary="An account's sums over a trailing window",
         responses=api_errors(400, 503))  # fmt: skip
    async def current(
        self,
        usage_reports: NamedDependency[UsageReports],
        account_id: Annotated[str, _ACCOUNT],
        window_minutes: Annotated[int, Parameter(ge=1, le=MAX_WINDOW_MINUTES, description="Trailing window")] = 300,
        domain: Annotated[str | None, _DOMAIN] = None,
        model: Annotated[str | None, _MODEL] = None,
    ) -> CurrentReport:
        """Tokens (input, output, cache creation, cache read), requests and cost from
        ``now - window_minutes`` to now, and Anthropic's latest view of the account."""
        return await usage_reports.current(account_id, window_minutes, UsageFilter(domain=domain, model=model))

    @get("/daily", operation_id="GetDailyUsage", summary="An account's sums per UTC day",
         responses=api_errors(400, 503))  # fmt: skip
    async def daily(
        self,
        usage_reports: NamedDependency[UsageReports],
        account_id: Annotated[str, _ACCOUNT],
        days: Annotated[int, Parameter(ge=1, le=MAX_DAYS, description="Days back, today included")] = 30,
        domain: Annotated[str | None, _DOMAIN] = None,
        model: Annotated[str | None, _MODEL] = None,
    ) -> DailyReport:
        """One entry per UTC day, oldest first; days without traffic are zeros."""
        return await usage_reports.daily(account_id, days, UsageFilter(domain=domain, model=model))

    @get("/series", operation_id="GetUsageSeries", summary="An account's sums in time buckets",
         responses=api_errors(400, 503))  # fmt: skip
    async def series(
        self,
        *,
        usage_reports: NamedDependency[UsageReports],
        account_id: Annotated[str, _ACCOUNT],
        window_hours: Annotated[int, Parameter(ge=1, le=MAX_WINDOW_HOURS, description="How far back")] = 5,
        interval_minutes: Annotated[
            int, Parameter(ge=1, le=MAX_INTERVAL_MINUTES, description="Bucket width in minutes")
        ] = 5,
        domain: Annotated[str | None, _DOMAIN] = None,
        model: Annotated[str | None, _MODEL] = None,
    ) -> SeriesReport:
        """Buckets aligned on multiples of ``interval_minutes`` since the Unix epoch (UTC), from
        the one holding ``now - window_hours`` to the one holding now (at most 1,000); each holds
        the sums of the requests that arrived in it, zeros when none did."""
        return await usage_reports.series(
            account_id, window_hours, interval_minutes, UsageFilter(domain=domain, model=model)
        )


class DomainTokenStats(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    inference: int
    query_evaluation: int
    quota: int
    errors: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str
    last_updated: datetime | None


class TokenStats(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    domains: dict[str, DomainTokenStats]


class TokenStatsController(Controller):
    path = "/"
    tags = ["usage"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {ValidationException: clear_validation_errors({})}  # noqa: RUF012 -- as above

    @get("/token-stats", operation_id="GetTokenStats", summary="This process's per-domain counters",
         responses=api_errors(400))  # fmt: skip
    async def token_stats(
        self,
        token_accounting: NamedDependency[TokenAccounting],
        domain: Annotated[str | None, _DOMAIN] = None,
    ) -> TokenStats:
        """In-memory counters since this process started (each worker counts what it served),
        with or without storage: requests, ``inference``/``query_evaluation``/``quota`` calls,
        errors, tool calls, tokens and cost. With ``domain``, only that domain (an empty map when
        it had no traffic)."""
        return TokenStats(
            since=datetime.fromtimestamp(token_accounting.started_ms / 1000, tz=UTC),
            domains={name: _domain_stats(counters) for name, counters in token_accounting.snapshot(domain).items()},
        )


def _domain_stats(counters: DomainCounters) -> DomainTokenStats:
    return DomainTokenStats(
        requests=counters.requests,
        inference=counters.inference,
        query_evaluation=counters.query_evaluation,
        quota=counters.quota,
        errors=counters.errors,
        tool_calls=counters.tool_calls,
        input_tokens=counters.input_tokens,
        output_tokens=counters.output_tokens,
        cache_creation_input_tokens=counters.cache_creation_input_tokens,
        cache_read_input_tokens=counters.cache_read_input_tokens,
        cost_usd=cost_text(counters.cost_usd),
        last_updated=_instant(counters.last_updated_ms),
    )


def _instant(epoch_ms: int) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC) if epoch_ms else None


USAGE_HANDLERS: list[ControllerRouterHandler] = [UsageController]
TOKEN_STATS_HANDLERS: list[ControllerRouterHandler] = [TokenStatsController]
