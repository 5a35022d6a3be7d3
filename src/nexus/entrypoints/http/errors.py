"""Every error Litestar raises, answered in Anthropic's format."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from nexus.domain.errors import error_body

log = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def _error_response(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    request_id = str(uuid.uuid4())
    return Response(
        error_body(error_type, message, request_id),
        status_code=status,
        media_type="application/json",
        headers={**(headers or {}), "x-request-id": request_id},
    )


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    error_type = _TYPE_BY_STATUS.get(exc.status_code, "invalid_request_error" if exc.status_code < 500 else "api_error")
    # The exception's own headers go along: a 405's Allow (RFC 9110 requires it), a Retry-After.
    return _error_response(exc.status_code, error_type, exc.detail, exc.headers)


def unexpected_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(500, "api_error", "Internal error in the proxy; see its log")
