"""What is stored for one exchange, computed off the hot path."""

from __future__ import annotations

import uuid
from collections.abc import Container
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from nexus.application.exchange import Exchange
from nexus.domain import json_text
from nexus.domain.body_codec import decompose
from nexus.domain.content_encoding import decoded_body
from nexus.domain.conversation.facts import FACTS_VERSION, LinkFacts, facts_from_body
from nexus.domain.conversation.subagents import AgentCall
from nexus.domain.conversation.threading import ThreadRule, is_threaded
from nexus.domain.headers import header_value
from nexus.domain.masking import masked_headers
from nexus.domain.message_rebuild import rebuild_message
from nexus.domain.pricing import PRICE_TABLE_VERSION, cost_usd
from nexus.domain.proxy_request import MESSAGES_PATH
from nexus.domain.rate_limits import UnifiedRateLimit, parse_unified_rate_limit
from nexus.domain.request_type import RequestReading, read_request
from nexus.domain.stored_compression import compress_stored
from nexus.domain.upstream_attempts import UpstreamAttempt
from nexus.domain.usage import ResponseFacts, TokenUsage, facts_from_message, facts_from_sse


class StoredPart(msgspec.Struct, frozen=True):
    """A request body piece, by its SHA-256, compressed."""

    digest: bytes
    data: bytes
    size: int


class ExchangeRow(msgspec.Struct, kw_only=True):
    """One row of ``exchanges`` plus the body parts it references."""

    id: uuid.UUID
    ts: datetime
    upstream_request_id: str | None
    domain: str | None
    account_id: str | None
    method: str
    path: str
    query: str | None
    status: int
    state: str
    error: str | None
    stream: bool
    request_type: str | None
    model_requested: str | None
    model: str | None
    user_agent: str | None
    session_id: str | None
    agent_id: str | None
    first_token_ms: float | None
    duration_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cost_usd: Decimal | None = None
    price_version: str | None = None
    tool_call_count: int = 0
    prompt_text: str | None = None  # the last user message's text (``domain.prompt_text``)
    request_headers: list[list[str]]
    response_headers: list[list[str]] | None
    request_body: bytes | None = None
    request_body_size: int | None = None
    response_body: Any = None
    response_raw: bytes | None = None
    response_raw_size: int | None = None
    # Conversation facts (inference requests only); the linker fills the link columns later.
    message_hash: str | None = None
    parent_message_hash: str | None = None
    grandparent_message_hash: str | None = None
    system_hash: str | None = None
    message_count: int | None = None
    prompt_key: str | None = None
    summarises: bool = False
    continuation_key: str | None = None
    agent_calls: list[AgentCall] | None = None
    title: str | None = None
    facts_version: int | None = None
    link_pending: bool = False
    upstream_attempts: list[UpstreamAttempt] | None = None  # retries and failovers before the answer
    parts: list[StoredPart] = msgspec.field(default_factory=list)
    # Not a column: the store keeps each account's latest one in ``account_rate_limits``.
    rate_limit: UnifiedRateLimit | None = None


def build_row(
    exchange: Exchange,
    *,
    store_bodies: bool,
    known_parts: Container[bytes] = frozenset(),
    thread_rule: ThreadRule = "any_client",
) -> ExchangeRow:
    """The row for a finished exchange: usage, cost, type and (for Messages calls) bodies.

    Only ``/v1/messages`` calls carry bodies; other ``/v1`` calls (files, batches, models)
    are kept as metadata. ``store_bodies=False`` keeps metadata and usage only. Body parts whose
    digest is in ``known_parts`` are already stored: the row references them without carrying
    (and compressing) them again, which is most of a long conversation's body on every turn.
    """
    measured = measure(exchange)
    facts, response = measured.facts, measured.response
    usage = facts.usage if facts is not None else None
    model = facts.model if facts is not None else None
    headers = exchange.request_headers
    row = ExchangeRow(
        id=uuid.UUID(exchange.request_id),
        ts=datetime.fromtimestamp(exchange.started_at_ms / 1000, tz=UTC),
        upstream_request_id=_text(header_value(exchange.response_headers, b"request-id")),
        domain=exchange.domain,
        account_id=exchange.account_id or exchange.domain,
        method=exchange.method,
        path=exchange.path,
        query=exchange.query_string.decode("latin-1") or None,
        status=exchange.status,
        state=measured.state,
        error=exchange.error,
        stream=exchange.stream,
        request_type=measured.request_type,
        model_requested=exchange.requested_model,
        model=model,
        user_agent=_text(header_value(headers, b"user-agent")),
        session_id=_text(header_value(headers, b"x-claude-code-session-id")),
        agent_id=_text(header_value(headers, b"x-claude-code-agent-id")),
        first_token_ms=_ms(exchange.first_byte_s, exchange.upstream_started_s) if exchange.stream else None,
        duration_ms=round(exchange.duration_s * 1000, 3),
        tool_call_count=facts.tool_calls if facts is not None else 0,
        # Text of the body: kept only where bodies are (STORE_BODIES=false keeps no content).
        prompt_text=measured.prompt_text if store_bodies and measured.is_messages else None,
        request_headers=[list(pair) for pair in masked_headers(headers)],
        response_headers=[list(pair) for pair in masked_headers(exchange.response_headers)] or None,
        rate_limit=parse_unified_rate_limit(exchange.response_headers),
        upstream_attempts=exchange.upstream_attempts or None,
    )
    if usage is not None:
        _apply_usage(row, model or exchange.requested_model, usage)
    message = _response_message(exchange, response) if measured.is_messages else None
    if measured.is_messages and store_bodies:
        _apply_bodies(row, exchange, message, known_parts)
    if is_threaded(measured.request_type, session_id=row.session_id, user_agent=row.user_agent, rule=thread_rule) and (
        exchange.request_body is not None
    ):
        apply_facts(row, facts_from_body(exchange.request_body, message))
    return row


def apply_facts(row: ExchangeRow, facts: LinkFacts) -> None:
    """Put a request's conversation facts on its row and queue it for the linker."""
    row.message_hash = facts.message_hash
    row.parent_message_hash = facts.parent_hash
    row.grandparent_message_hash = facts.grandparent_hash
    row.system_hash = facts.system_hash
    row.message_count = facts.message_count
    row.prompt_key = facts.prompt_key
    row.summarises = facts.summarises
    row.continuation_key = facts.continuation_key
    row.agent_calls = facts.agent_calls or None
    row.title = facts.title
    row.facts_version = FACTS_VERSION
    row.link_pending = True


class Measured(msgspec.Struct, frozen=True):
    """What accounting needs of an exchange: its state, type and response facts."""

    is_messages: bool
    state: str
    request_type: str | None
    facts: ResponseFacts | None
    response: bytes | None  # the decoded response body of a Messages call
    prompt_text: str | None = None  # read with the type, in the same decode of the body


class _LastMeasured:
    """The one exchange measured last, with its measure.

    Every observer of an exchange (the counters, Slack, the telemetry endpoint, test samples)
    wants the same facts, in turn on the event loop, and a stream's are read by parsing all of
    it: one slot, checked by identity, lets them parse it once.
    """

    exchange: Exchange | None = None
    measured: Measured | None = None


def measure(exchange: Exchange) -> Measured:
    """The accounting half of ``build_row``, for counting without building a row."""
    if _LastMeasured.exchange is exchange and _LastMeasured.measured is not None:
        return _LastMeasured.measured
    measured = _measure(exchange)
    _LastMeasured.exchange, _LastMeasured.measured = exchange, measured
    return measured


def _measure(exchange: Exchange) -> Measured:
    is_messages = exchange.path == MESSAGES_PATH and exchange.method == "POST"
    response = _readable_response(exchange) if is_messages else None
    reading: RequestReading | None = (
        read_request(exchange.request_body) if is_messages and exchange.request_body else None
    )
    return Measured(
        is_messages=is_messages,
        state=_state(exchange, response),
        request_type=reading.request_type if reading else None,
        facts=_facts(exchange, response),
        response=response,
        prompt_text=reading.prompt_text if reading else None,
    )


def _apply_usage(row: ExchangeRow, model: str | None, usage: TokenUsage) -> None:
    row.input_tokens = usage.input_tokens
    row.output_tokens = usage.output_tokens
    row.cache_creation_input_tokens = usage.cache_creation_input_tokens
    row.cache_creation_5m_input_tokens = usage.cache_creation_5m_input_tokens
    row.cache_creation_1h_input_tokens = usage.cache_creation_1h_input_tokens
    row.cache_read_input_tokens = usage.cache_read_input_tokens
    row.cost_usd = cost_usd(model, usage)
    row.price_version = PRICE_TABLE_VERSION if row.cost_usd is not None else None


def _apply_bodies(row: ExchangeRow, exchange: Exchange, message: Any, known_parts: Container[bytes]) -> None:
    if exchange.request_body is not None:
        decomposed = decompose(exchange.request_body)
        row.request_body = decomposed.skeleton
        row.request_body_size = len(exchange.request_body)
        row.parts = [
            StoredPart(digest=digest, data=compress_stored(part.data), size=len(part.data))
            for part in decomposed.parts
            if (digest := bytes.fromhex(part.digest)) not in known_parts
        ]
    raw = exchange.response_body
    if raw:
        row.response_raw = compress_stored(raw)
        row.response_raw_size = len(raw)
    row.response_body = message


def _response_message(exchange: Exchange, response: bytes | None) -> Any:
    """The response as one message: rebuilt from the stream, else the JSON body (or error)."""
    if response is None:
        return None
    return rebuild_message(response) if exchange.stream and exchange.status == 200 else _json_or_none(response)


def _readable_response(exchange: Exchange) -> bytes | None:
    return decoded_body(exchange.response_body, header_value(exchange.response_headers, b"content-encoding"))


def _facts(exchange: Exchange, response: bytes | None) -> ResponseFacts | None:
    if response is None or exchange.status != 200:
        return None
    return facts_from_sse(response) if exchange.stream else facts_from_message(response)


def _state(exchange: Exchange, response: bytes | None) -> str:
    """The terminal state; a 200 stream that ends without ``message_stop`` did not complete."""
    if exchange.outcome != "complete" or not exchange.stream or response is None or exchange.status != 200:
        return exchange.outcome
    if b"event: message_stop" in response:
        return "complete"
    return "upstream_error" if b"event: error" in response else "truncated"


def _json_or_none(body: bytes) -> Any:
    try:
        return json_text.loads(body)
    except msgspec.DecodeError:
        return None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _ms(end_s: float | None, start_s: float | None) -> float | None:
    if end_s is None or start_s is None:
        return None
    # Microseconds: the clock's last digits are noise, and they made every API figure unreadable.
    return round((end_s - start_s) * 1000, 3)
