"""Reading recorded exchanges back: the read model of the management API.

The structs are what the API answers, field for field: costs are exact decimal strings
(``numeric(20, 9)`` printed without exponent, e.g. ``"0.001234500"``) so no JSON reader turns
them into binary floats, and timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec

from nexus.domain.upstream_attempts import UpstreamAttempt


class QueriesUnavailable(Exception):
    """Nothing can be read: storage is off, or the database cannot be reached."""


class RequestFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Which exchanges to list; every filter given must match (``None`` matches anything).

    ``model`` matches the model that answered or the model requested.
    ``text`` is a case-insensitive substring of the prompt (the last user message's text, as
    recorded since revision 0010), the stored response (the rebuilt message or error JSON), the
    model, the path or the proxy's error message.
    ``since`` is inclusive, ``until`` exclusive.
    """

    domain: str | None = None
    account_id: str | None = None
    model: str | None = None
    request_type: str | None = None
    status: int | None = None
    state: str | None = None
    conversation_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


class RequestSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One exchange as listed."""

    request_id: uuid.UUID
    timestamp: datetime
    domain: str | None
    account_id: str | None
    method: str
    path: str
    model: str | None
    model_requested: str | None
    request_type: str | None
    status: int
    stream: bool
    state: str
    error: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None
    cost_usd: str | None
    duration_ms: float
    first_token_ms: float | None
    tool_call_count: int
    conversation_id: uuid.UUID | None
    branch_id: str | None
    parent_request_id: uuid.UUID | None
    is_subtask: bool
    parent_task_request_id: uuid.UUID | None


class RequestPreview(msgspec.Struct, frozen=True, kw_only=True):
    """What a list row shows of a request's content, each text on one line and cut short.

    ``prompt`` is the start of its last user message's text: ``None`` for a message of tool
    results only, other endpoints, rows recorded before revision 0010 or with
    ``STORE_BODIES=false``. ``answer`` is the start of the stored response's first text block,
    or of its error message. ``tools`` names the tool calls of the stored response, in order.
    """

    prompt: str | None
    answer: str | None
    tools: list[str]


class RequestPage(msgspec.Struct, frozen=True, omit_defaults=True):
    """One page of requests. ``total`` counts every match, unless the caller bounded the count
    (``count_up_to``): then ``total_is_exact`` is false when there are more than ``total``."""

    requests: list[RequestSummary]
    total: int
    total_is_exact: bool = True


class RequestDetail(RequestSummary, frozen=True, kw_only=True):
    """One exchange in full.

    ``request_body`` is the client's body parsed as JSON, or ``None`` when none was stored or it
    is not JSON (its exact bytes are read with ``ExchangeQueries.request_body``).
    ``response_body`` is the stored message: rebuilt from the stream for streams, as received
    otherwise. Headers are as stored, credentials masked; a repeated header's values are joined
    with ``", "``.
    """

    upstream_request_id: str | None
    query: str | None
    user_agent: str | None
    session_id: str | None
    agent_id: str | None
    cache_creation_5m_input_tokens: int | None
    cache_creation_1h_input_tokens: int | None
    price_version: str | None
    request_headers: dict[str, str] | None
    response_headers: dict[str, str] | None
    request_body: Any
    request_body_size: int | None
    response_body: Any
    response_raw_size: int | None
    # Retries, pool failovers and the circuit's refusals and probes, oldest first; empty when the
    # first attempt answered with the circuit closed, or the request never went upstream.
    upstream_attempts: list[UpstreamAttempt] = msgspec.field(default_factory=list)
    # Queued for the linker: recorded with conversation facts and not threaded yet (or queued
    # again after a late parent). False for a request that is not threaded at all.
    link_pending: bool = False


class StoredBody(msgspec.Struct, frozen=True):
    """Exact bytes of a stored body and the headers that describe them (``None`` when unknown)."""

    data: bytes
    content_type: str | None = None
    content_encoding: str | None = None


class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over a set of exchanges; missing token counts and unpriced exchanges add nothing.

    ``errors`` counts exchanges answered with a status of 400 or more, and 200 streams that
    ended in an error event or were cut off (states ``upstream_error`` and ``truncated``).
    """

    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str
    avg_duration_ms: float | None
    avg_first_token_ms: float | None


class UsageGroup(UsageTotals, frozen=True, kw_only=True):
    """The totals of one model, request type or domain (``name`` is ``None`` when unknown)."""

    name: str | None


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    until: datetime
    totals: UsageTotals
    by_model: list[UsageGroup]
    by_request_type: list[UsageGroup]
    by_domain: list[UsageGroup]


class DomainActivity(msgspec.Struct, frozen=True, kw_only=True):
    domain: str | None
    requests: int
    last_request_at: datetime


class DomainPage(msgspec.Struct, frozen=True):
    domains: list[DomainActivity]
    total: int


@runtime_checkable
class ExchangeQueries(Protocol):
    """Every method raises ``QueriesUnavailable`` when storage is off or unreachable."""

    async def list_requests(
        self, filters: RequestFilters, *, limit: int, offset: int, count_up_to: int | None = None
    ) -> RequestPage:
        """Matching exchanges, newest first, and how many match in all."""
        ...

    async def count_requests(self, filters: RequestFilters) -> int: ...

    def iter_requests(self, filters: RequestFilters, *, limit: int) -> AsyncIterator[list[RequestSummary]]:
        """Matching exchanges newest first, in chunks, read with a server-side cursor.

        The database connection is held while the iterator runs and released when it ends or
        is closed.
        """
        ...

    async def summaries_by_ids(self, request_ids: Sequence[uuid.UUID]) -> list[RequestSummary]:
        """The stored exchanges among these ids, oldest first; unknown ids are left out."""
        ...

    async def previews(self, requests: Sequence[RequestSummary]) -> dict[uuid.UUID, RequestPreview]:
        """The previews of these listed requests, by id (a request no longer stored has none)."""
        ...

    async def get_request(self, request_id: uuid.UUID) -> RequestDetail | None: ...

    async def request_body(self, request_id: uuid.UUID) -> StoredBody | None:
        """The exact body the client sent; ``None`` for an unknown id or when none was stored."""
        ...

    async def response_raw(self, request_id: uuid.UUID) -> StoredBody | None:
        """The response bytes as relayed to the client (SSE for streams), with its content type."""
        ...

    async def request_exists(self, request_id: uuid.UUID) -> bool: ...

    async def stats(self, since: datetime, until: datetime) -> Stats: ...

    async def domains(self, since: datetime, *, limit: int, offset: int) -> DomainPage:
        """Domains seen since ``since``, busiest first, with their request counts."""
        ...
