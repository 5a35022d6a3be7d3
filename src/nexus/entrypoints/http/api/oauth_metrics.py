"""``GET /oauth-metrics``: this process's OAuth refreshes, as the original reported them."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.types import ControllerRouterHandler

from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.entrypoints.http.api.params import API_SECURITY, api_errors


class OAuthMetrics(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The original's field names, so its scripts and dashboards read it unchanged."""

    attempts: int
    successes: int
    failures: int
    concurrent_waits: int
    total_refresh_time: float  # milliseconds, as in the original
    current_active_refreshes: int
    current_failed_refreshes: int
    since: datetime


class OAuthMetricsController(Controller):
    path = "/"
    tags = ["usage"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY

    @get("/oauth-metrics", operation_id="GetOAuthMetrics", summary="This process's OAuth token refreshes",
         responses=api_errors())  # fmt: skip
    async def oauth_metrics(self, keep_oauth_fresh: NamedDependency[KeepOAuthFresh]) -> OAuthMetrics:
        """Refreshes of OAuth credential files since this process started (each worker counts its
        own): ``attempts`` = ``successes`` + ``failures`` + ``currentActiveRefreshes``;
        ``concurrentWaits`` counts requests that waited on a refresh already running;
        ``totalRefreshTime`` is in milliseconds; ``currentFailedRefreshes`` counts credentials
        whose latest refresh failed."""
        metrics = keep_oauth_fresh.metrics()
        return OAuthMetrics(
            attempts=metrics.attempts,
            successes=metrics.successes,
            failures=metrics.failures,
            concurrent_waits=metrics.concurrent_waits,
            total_refresh_time=round(metrics.total_refresh_ms, 3),
            current_active_refreshes=metrics.current_active_refreshes,
            current_failed_refreshes=metrics.current_failed_refreshes,
            since=keep_oauth_fresh.started_at,
        )


OAUTH_METRICS_HANDLERS: list[ControllerRouterHandler] = [OAuthMetricsController]
