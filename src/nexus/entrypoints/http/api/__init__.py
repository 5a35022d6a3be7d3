"""The management API under ``/api`` (and ``/token-stats``, ``/oauth-metrics``), behind
``DASHBOARD_API_KEY``.

Each module owns its routes; ``API_ROUTE_HANDLERS`` is what the app mounts.
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ControllerRouterHandler

from nexus.entrypoints.http.api.analyses import ANALYSIS_HANDLERS
from nexus.entrypoints.http.api.auth import require_dashboard_key
from nexus.entrypoints.http.api.conversations import CONVERSATION_HANDLERS
from nexus.entrypoints.http.api.oauth_metrics import OAUTH_METRICS_HANDLERS
from nexus.entrypoints.http.api.params import API_SECURITY
from nexus.entrypoints.http.api.prompts import PROMPT_HANDLERS
from nexus.entrypoints.http.api.requests import REQUEST_HANDLERS
from nexus.entrypoints.http.api.stats import STATS_HANDLERS
from nexus.entrypoints.http.api.usage import TOKEN_STATS_HANDLERS, USAGE_HANDLERS


def refuse_writes(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """``--role dashboard`` reads: its database may be a read-only role, and jobs belong to the proxy."""
    if connection.scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
        raise MethodNotAllowedException(
            "This is the read-only dashboard process (--role dashboard): send writes to the proxy",
            headers={"allow": "GET, HEAD"},
        )


def api_router(*, read_only: bool = False) -> Router:
    """``/api``: every route behind the key; ``read_only`` refuses the few that write."""
    return Router(
        path="/api",
        route_handlers=[
            *REQUEST_HANDLERS,
            *CONVERSATION_HANDLERS,
            *STATS_HANDLERS,
            *USAGE_HANDLERS,
            *PROMPT_HANDLERS,
            *ANALYSIS_HANDLERS,
        ],
        guards=[require_dashboard_key, *([refuse_writes] if read_only else [])],
        security=API_SECURITY,
    )


API_ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    api_router(),
    Router(
        path="/",
        route_handlers=[*TOKEN_STATS_HANDLERS, *OAUTH_METRICS_HANDLERS],
        guards=[require_dashboard_key],
        security=API_SECURITY,
    ),
]
