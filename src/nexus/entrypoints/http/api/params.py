"""What the management API routes share: paging bounds, timestamps, ids, and their errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ServiceUnavailableException, ValidationException

from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.entrypoints.http.errors import http_exception_handler

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# How the management API authenticates, for the OpenAPI document (schemes defined in ``docs.py``).
API_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]

_TIMESTAMP_HINT = "expected an ISO 8601 timestamp such as 2026-11-23T10:00:00Z"
_HINTS = {
    "since": _TIMESTAMP_HINT,
    "until": _TIMESTAMP_HINT,
    "conversation_id": "expected a UUID",
    "state": "expected one of complete, upstream_error, client_cancelled, truncated, rejected",
    "format": "expected csv or json",
}


def utc(moment: datetime | None) -> datetime | None:
    """A query timestamp without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def parse_request_id(raw: str) -> uuid.UUID:
    """The id in a path; a malformed one is a 400, not a 404."""
    return parse_path_id(raw, "request id", "the x-request-id header")


def parse_path_id(raw: str, what: str, hint: str) -> uuid.UUID:
    """A UUID in a path; a malformed one is a 400 naming ``what`` it should be, not a 404."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationException(f"Invalid {what} {raw!r}: expected a UUID ({hint})") from None


def storage_unavailable(request: Request[Any, Any, Any], exc: QueriesUnavailable) -> Response[bytes]:
    """503 in Anthropic's error format when nothing can be read."""
    return http_exception_handler(request, ServiceUnavailableException(detail=str(exc)))


def clear_validation_errors(aliases: Mapping[str, str]) -> Any:
    """An exception handler that names each invalid parameter as the client spelled it.

    Litestar reports ``Validation failed for GET /api/…`` and keeps the detail aside (keyed by
    the Python argument name); this puts it in the message. ``aliases`` maps argument names to
    query names where they differ (``state`` is reserved by Litestar, ``format`` is a builtin).
    """

    def handle(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
        problems = exc.extra if isinstance(exc.extra, list) else []
        reasons = []
        for problem in problems:
            if not isinstance(problem, dict) or "key" not in problem:
                continue
            name = aliases.get(problem["key"], problem["key"])
            given = request.query_params.get(name)
            shown = f"{name}={given!r}" if given is not None else name
            source = getattr(problem.get("source"), "value", None) or "request"
            hint = _HINTS.get(name)
            reasons.append(
                f"{source} parameter {shown}: {problem.get('message', 'invalid')}" + (f" ({hint})" if hint else "")
            )
        if not reasons:
            return http_exception_handler(request, exc)
        return http_exception_handler(request, ValidationException("Invalid " + "; ".join(reasons)))

    return handle
