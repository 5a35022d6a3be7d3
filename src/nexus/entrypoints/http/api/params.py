"""What the management API routes share: paging bounds, timestamps, ids, and their errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.entrypoints.http.errors import http_exception_handler

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# PostgreSQL's OFFSET is a bigint: past it the query fails; no listing gets near this.
MAX_OFFSET = 1_000_000_000
# Ids in paths are UUIDs, documented so (generators then try real ones), though typed str: a
# malformed id is answered 400 naming what is expected, where a uuid route type would give 404.
UUID_FORMAT: dict[str, Any] = {"format": "uuid"}
# How the management API authenticates, for the OpenAPI document (schemes defined in ``docs.py``).
API_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"dashboardKey": []}, {"bearer": []}]


class ApiErrorDetail(msgspec.Struct, frozen=True):
    type: str  # invalid_request_error, authentication_error, not_found_error, rate_limit_error, api_error...
    message: str


class ApiError(msgspec.Struct, frozen=True):
    """Anthropic's error format, in which every error of the API is answered
    (``nexus.entrypoints.http.errors``)."""

    type: Literal["error"]
    error: ApiErrorDetail
    request_id: str


_ERRORS = {
    400: "A parameter or the body is invalid: the message names each one and what it expects",
    401: "DASHBOARD_API_KEY is missing or wrong (X-API-Key, X-Dashboard-Key or Authorization: Bearer)",
    404: "Nothing has that id or name",
    409: "The action is not configured",
    429: "Too many analyses for the domain: try again after Retry-After seconds",
    503: "Storage is off, or the database cannot be reached",
}


def api_errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI responses of a route's errors: 401 and ``statuses``, in Anthropic's format.

    Litestar would document a 400 as its own ``{status_code, detail}``, which the API never
    answers, and none of the others; these replace it.
    """
    return {
        status: ResponseSpec(ApiError, description=_ERRORS[status], generate_examples=False)
        for status in sorted({401, *statuses})
    }


def served_as(content: Mapping[str, Schema | Reference]) -> type[Operation]:
    """An OpenAPI operation whose 200 response is documented as ``content`` (media type to
    schema): Litestar documents one media type, with the schema of the handler's return type
    (``bytes``: a string), where a route serves raw bytes in several."""

    @dataclass
    class ServedAs(Operation):
        def __post_init__(self) -> None:
            ok = (self.responses or {}).get("200")
            if isinstance(ok, OpenAPIResponse):
                ok.content = {media_type: OpenAPIMediaType(schema=schema) for media_type, schema in content.items()}

    return ServedAs


ANY_JSON = Schema(description="Any JSON value")
ANY_BYTES = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
# One server-sent event, as Anthropic's streams carry them: a name and a JSON payload.
SSE_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    required=["data"],
    properties={
        "event": Schema(type=OpenAPIType.STRING, description="message_start, content_block_delta, ping, error..."),
        "data": Schema(type=OpenAPIType.STRING, content_media_type="application/json"),
        "id": Schema(type=OpenAPIType.STRING),
        "retry": Schema(type=OpenAPIType.INTEGER),
    },
)


_TIMESTAMP_HINT = "expected an ISO 8601 timestamp such as 2026-11-23T10:00:00Z"
_HINTS = {
    "since": _TIMESTAMP_HINT,
    "until": _TIMESTAMP_HINT,
    "conversation_id": "expected a UUID",
    "state": "expected one of complete, upstream_error, client_cancelled, truncated, rejected",
    "format": "expected csv or json",
}


def iso_timestamps(request: Request[Any, Any, Any], *names: str) -> None:
    """Refuse a timestamp parameter that is not ISO 8601 (RFC 3339), as documented.

    Litestar converts query values leniently, which reads a number as Unix seconds (``until=0.5``
    was 1970): the value is read again strictly, as a string.
    """
    for name in names:
        raw = request.query_params.get(name)
        if raw is None:
            continue
        try:
            msgspec.convert(raw, datetime)
        except msgspec.ValidationError:
            raise ValidationException(f"Invalid query parameter {name}={raw!r}: {_TIMESTAMP_HINT}") from None


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
