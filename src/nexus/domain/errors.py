"""Faults the proxy reports to its clients in Anthropic's error vocabulary.

ProxyError
├── InvalidRequest          400 invalid_request_error
├── RequestTooLarge         413 request_too_large
├── AuthenticationFailed    401 authentication_error
├── TrafficLimitReached     429 rate_limit_error (the proxy's own limits)
├── UpstreamUnavailable     502 api_error
├── UpstreamCircuitOpen     503 overloaded_error
└── UpstreamTimeout         504 timeout_error
"""

from __future__ import annotations

import msgspec


class ProxyError(Exception):
    """A fault detected by the proxy itself, answered without calling upstream."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(
        self, message: str, *, retry_after_s: int | None = None, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.headers = headers  # more response headers, beside retry-after


class InvalidRequest(ProxyError):
    status = 400
    error_type = "invalid_request_error"


class RequestTooLarge(ProxyError):
    status = 413
    error_type = "request_too_large"


class AuthenticationFailed(ProxyError):
    status = 401
    error_type = "authentication_error"


class TrafficLimitReached(ProxyError):
    status = 429
    error_type = "rate_limit_error"


class UpstreamUnavailable(ProxyError):
    status = 502
    error_type = "api_error"


class UpstreamCircuitOpen(ProxyError):
    """Upstream failed repeatedly; the proxy answers at once until a probe succeeds."""

    status = 503
    error_type = "overloaded_error"


class UpstreamTimeout(ProxyError):
    status = 504
    error_type = "timeout_error"


class _ErrorDetail(msgspec.Struct):
    type: str
    message: str


class _ErrorBody(msgspec.Struct, tag_field="type", tag="error", omit_defaults=True):
    error: _ErrorDetail
    request_id: str | None = None


_encode = msgspec.json.Encoder().encode


def error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    """Anthropic's error JSON: ``{"type":"error","error":{"type":…,"message":…}}``."""
    return _encode(_ErrorBody(error=_ErrorDetail(type=error_type, message=message), request_id=request_id))
