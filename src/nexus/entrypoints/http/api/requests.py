"""Management API routes: recorded requests, one by one, listed and exported."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.spec import OpenAPIType, Reference, Schema
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Stream
from litestar.types import ControllerRouterHandler

from nexus.application.ports.exchange_queries import (
    ExchangeQueries,
    QueriesUnavailable,
    RequestDetail,
    RequestFilters,
    RequestPage,
    RequestSummary,
    StoredBody,
)
from nexus.domain.outcome import Outcome
from nexus.entrypoints.csv_cells import csv_cell
from nexus.entrypoints.http.api.params import (
    ANY_BYTES,
    ANY_JSON,
    API_SECURITY,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    SSE_EVENT,
    UUID_FORMAT,
    api_errors,
    clear_validation_errors,
    iso_timestamps,
    parse_request_id,
    served_as,
    storage_unavailable,
    utc,
)

EXPORT_MAX_ROWS = 100_000

RequestId = Annotated[
    str, PathParameter(description="The x-request-id the client got (a UUID)", schema_extra=UUID_FORMAT)
]
_CSV_COLUMNS = RequestSummary.__struct_fields__
# A response is kept as it was relayed: an SSE stream, JSON (errors and non-streamed answers), or
# whatever upstream sent, with its content type.
_RELAYED = served_as(
    {
        "text/event-stream": SSE_EVENT,
        "application/json": ANY_JSON,
        "application/octet-stream": ANY_BYTES,
        "*/*": ANY_BYTES,
    }
)
# CSV, or (format=json) a JSON array of the list's rows. Documented here only: a route media_type
# would win over the Stream's own (Litestar's streaming response prefers the route's), and JSON
# exports were served as text/csv.
_EXPORTED = served_as(
    {
        "text/csv": Schema(type=OpenAPIType.STRING),
        "application/json": Schema(type=OpenAPIType.ARRAY, items=Reference(ref="#/components/schemas/RequestSummary")),
    }
)


async def provide_filters(
    *,
    request: Request[Any, Any, Any],
    domain: FromQuery[str | None] = None,
    account_id: FromQuery[str | None] = None,
    model: Annotated[str | None, QueryParameter(description="The model that answered, or the one requested")] = None,
    request_type: Annotated[str | None, QueryParameter(description="inference, quota, query_evaluation, ...")] = None,
    status: Annotated[int | None, QueryParameter(ge=100, le=599, description="HTTP status code")] = None,
    exchange_state: Annotated[Outcome | None, QueryParameter(name="state")] = None,
    conversation_id: FromQuery[uuid.UUID | None] = None,
    since: Annotated[datetime | None, QueryParameter(description="ISO 8601, inclusive (UTC when no offset)")] = None,
    until: Annotated[datetime | None, QueryParameter(description="ISO 8601, exclusive (UTC when no offset)")] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            min_length=1,
            max_length=200,
            description=(
                "Case-insensitive text in the prompt (the last user message), the stored response,"
                " the model, the path or the error message"
            ),
        ),
    ] = None,
) -> RequestFilters:
    iso_timestamps(request, "since", "until")
    return RequestFilters(
        domain=domain,
        account_id=account_id,
        model=model,
        request_type=request_type,
        status=status,
        state=exchange_state,
        conversation_id=conversation_id,
        since=utc(since),
        until=utc(until),
        text=q,
    )


class RequestsController(Controller):
    path = "/"
    tags = ["requests"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {  # noqa: RUF012 -- as above
        QueriesUnavailable: storage_unavailable,
        ValidationException: clear_validation_errors({"exchange_state": "state", "export_format": "format"}),
    }

    @get("/requests", operation_id="ListRequests", summary="Recorded requests, newest first",
         dependencies={"filters": Provide(provide_filters)}, responses=api_errors(400, 503))  # fmt: skip
    async def list_requests(
        self,
        exchange_queries: NamedDependency[ExchangeQueries],
        filters: NamedDependency[RequestFilters],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> RequestPage:
        """Every filter given must match; ``total`` counts all matches, not only this page.

        ``q`` scans the prompts and stored responses of the rows the other filters leave, so narrow it with
        ``since``/``until`` (which also skip whole monthly partitions) on large databases.
        """
        return await exchange_queries.list_requests(filters, limit=limit, offset=offset)

    @get("/requests/{request_id:str}", operation_id="GetRequest", summary="One request in full",
         responses=api_errors(400, 404, 503))  # fmt: skip
    async def get_request(
        self, exchange_queries: NamedDependency[ExchangeQueries], request_id: RequestId
    ) -> RequestDetail:
        """Headers (credentials masked), the request body parsed as JSON and the stored response."""
        detail = await exchange_queries.get_request(parse_request_id(request_id))
        if detail is None:
            raise NotFoundException(f"No recorded request with id {request_id}")
        return detail

    @get("/requests/{request_id:str}/request-body", operation_id="GetRequestBody",
         summary="The exact request body", media_type="application/json", responses=api_errors(400, 404, 503),
         operation_class=served_as({"application/json": ANY_JSON, "*/*": ANY_BYTES}))  # fmt: skip
    async def get_request_body(
        self, exchange_queries: NamedDependency[ExchangeQueries], request_id: RequestId
    ) -> Response[bytes]:
        """The bytes the client sent, unchanged (stored for ``POST /v1/messages`` when STORE_BODIES is on)."""
        parsed = parse_request_id(request_id)
        body = await exchange_queries.request_body(parsed)
        if body is None:
            raise await _missing(exchange_queries, parsed, "request body")
        return _raw(body, default_type="application/json")

    @get("/requests/{request_id:str}/stream", operation_id="GetResponseRaw",
         summary="The response bytes as relayed", media_type="text/event-stream", responses=api_errors(400, 404, 503),
         operation_class=_RELAYED)  # fmt: skip
    async def get_response_raw(
        self, exchange_queries: NamedDependency[ExchangeQueries], request_id: RequestId
    ) -> Response[bytes]:
        """What the client received, byte for byte: the SSE stream for streams, the JSON otherwise,
        with the content type (and content encoding) it was sent with."""
        parsed = parse_request_id(request_id)
        body = await exchange_queries.response_raw(parsed)
        if body is None:
            raise await _missing(exchange_queries, parsed, "response")
        return _raw(body, default_type="application/octet-stream")

    @get("/export/requests", operation_id="ExportRequests", summary="Recorded requests as CSV or JSON",
         dependencies={"filters": Provide(provide_filters)}, responses=api_errors(400, 503),
         operation_class=_EXPORTED)  # fmt: skip
    async def export_requests(
        self,
        exchange_queries: NamedDependency[ExchangeQueries],
        filters: NamedDependency[RequestFilters],
        export_format: Annotated[Literal["csv", "json"], QueryParameter(name="format")] = "csv",
        limit: Annotated[int | None, QueryParameter(ge=1, le=EXPORT_MAX_ROWS)] = None,
    ) -> Stream:
        """The list's rows and filters, newest first, streamed: CSV with a header row, or a JSON
        array. At most 100,000 rows; ``x-total-count`` tells how many match in all."""
        total = await exchange_queries.count_requests(filters)
        rows = exchange_queries.iter_requests(filters, limit=limit or EXPORT_MAX_ROWS)
        name = f"requests.{export_format}"
        return Stream(
            _csv_chunks(rows) if export_format == "csv" else _json_chunks(rows),
            # Litestar adds "; charset=utf-8" to a text/* type itself (given here too, it came twice).
            media_type="text/csv" if export_format == "csv" else "application/json",
            headers={"content-disposition": f'attachment; filename="{name}"', "x-total-count": str(total)},
        )


async def _missing(queries: ExchangeQueries, request_id: uuid.UUID, what: str) -> HTTPException:
    if not await queries.request_exists(request_id):
        return NotFoundException(f"No recorded request with id {request_id}")
    return NotFoundException(
        f"Request {request_id} has no stored {what}: bodies are kept for POST /v1/messages when STORE_BODIES is on"
    )


def _raw(body: StoredBody, *, default_type: str) -> Response[bytes]:
    headers = {"content-encoding": body.content_encoding} if body.content_encoding else {}
    return Response(body.data, media_type=body.content_type or default_type, headers=headers)


async def _csv_chunks(chunks: AsyncIterator[list[RequestSummary]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_COLUMNS)
    yield _drain(buffer)
    async for chunk in chunks:
        for item in msgspec.to_builtins(chunk):
            writer.writerow([csv_cell(item[column]) for column in _CSV_COLUMNS])
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def _json_chunks(chunks: AsyncIterator[list[RequestSummary]]) -> AsyncIterator[bytes]:
    yield b"["
    separator = b""
    async for chunk in chunks:
        if chunk:
            yield separator + msgspec.json.encode(chunk)[1:-1]
            separator = b","
    yield b"]"


REQUEST_HANDLERS: list[ControllerRouterHandler] = [RequestsController]
