"""``DASHBOARD_API_KEY`` for the management API: ``X-API-Key``, ``X-Dashboard-Key`` (the
original's dashboard header) or ``Authorization: Bearer``."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from nexus.domain.credentials import secrets_match


def carries_dashboard_key(connection: ASGIConnection[Any, Any, Any, Any], expected: str) -> bool:
    """Whether any of the request's key headers is ``expected`` (each compared in constant time,
    all of them always, so the time says nothing about which header came close)."""
    headers = connection.headers
    scheme, _space, token = (headers.get("authorization") or "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    presented = (headers.get("x-api-key"), headers.get("x-dashboard-key"), bearer)
    return any([secrets_match(key, expected) for key in presented])


def require_dashboard_key(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """401 unless the request carries the configured key."""
    expected: str | None = connection.app.state.get("dashboard_api_key")
    if not expected:
        raise NotAuthorizedException("The management API is disabled: set DASHBOARD_API_KEY to enable it")
    if not carries_dashboard_key(connection, expected):
        raise NotAuthorizedException(
            "Missing or invalid API key: send X-API-Key, X-Dashboard-Key or Authorization: Bearer"
        )
