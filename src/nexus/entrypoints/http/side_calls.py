"""Calls Claude Code makes to its base URL that the proxy answers itself, without credentials."""

from __future__ import annotations

from litestar import Response, get, head, post, route
from litestar.enums import HttpMethod

from nexus import __version__

_OK = {"status": "ok"}


@head("/", include_in_schema=False)
async def root_head() -> Response[None]:
    return Response(content=None, status_code=200, media_type="text/plain")


@get("/", include_in_schema=False)
async def root() -> Response[dict[str, object]]:
    """What this service is; a quick check that the base URL points at the proxy."""
    return Response(
        {
            "service": "claude-nexus",
            "version": __version__,
            "proxy": "/v1/* is forwarded to the Anthropic API",
            "endpoints": {
                "messages": "/v1/messages",
                "health": "/health",
                "liveness": "/health/live",
                "readiness": "/health/ready",
                "management_api_docs": "/docs",
                "dashboard": "/dashboard",
                "token_stats": "/token-stats",
                "oauth_metrics": "/oauth-metrics",
            },
        },
    )


@route("/api/hello", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False)
async def hello() -> Response[dict[str, str]]:
    """Claude Code's connection warm-up."""
    return Response(_OK, status_code=200)


@post(["/api/event_logging", "/api/event_logging/{rest:path}"], status_code=200, include_in_schema=False)
async def event_logging() -> Response[dict[str, str]]:
    """Claude Code's telemetry: accepted and dropped, so it never reaches Anthropic through us."""
    return Response(_OK, status_code=200)


SIDE_CALL_HANDLERS = [root_head, root, hello, event_logging]
