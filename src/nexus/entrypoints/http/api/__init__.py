"""The management API under ``/api`` (and ``/token-stats``, ``/oauth-metrics``), behind
``DASHBOARD_API_KEY``.

Each module owns its routes; ``API_ROUTE_HANDLERS`` is what the app mounts.
"""

from __future__ import annotations

from litestar import Router
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

API_ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    Router(
        path="/api",
        route_handlers=[
            *REQUEST_HANDLERS,
            *CONVERSATION_HANDLERS,
            *STATS_HANDLERS,
            *USAGE_HANDLERS,
            *PROMPT_HANDLERS,
            *ANALYSIS_HANDLERS,
        ],
        guards=[require_dashboard_key],
        security=API_SECURITY,
    ),
    Router(
        path="/",
        route_handlers=[*TOKEN_STATS_HANDLERS, *OAUTH_METRICS_HANDLERS],
        guards=[require_dashboard_key],
        security=API_SECURITY,
    ),
]
