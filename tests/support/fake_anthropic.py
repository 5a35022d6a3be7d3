"""A loopback imitation of api.anthropic.com, faithful enough on the wire for proxy tests.

`FakeAnthropic` serves an aiohttp application from a background thread. Each response is a pure
function of the request (method, raw path, raw query, body and the ``x-fake-scenario`` header):
the same request sent directly and through a proxy gets a byte-identical body and the same
``request-id``; only the ``Date`` header that aiohttp adds differs.

Requests pick the behaviour with the ``x-fake-scenario`` header (default ``text``):

- ``text``: one text block quoting the last user message, streamed word by word.
- ``tool_use``: a text block, then a ``Read`` tool_use block streamed as input_json_delta fragments.
- ``thinking``: a thinking block (thinking_delta chunks, one signature_delta), then a text block.
- ``agents``: a text block, then two ``Agent`` tool_use blocks launching sub-agents with the
  prompts in ``AGENT_PROMPTS`` (what Claude Code 2.1 does for parallel sub-agents).
- ``summary``: the answer to a ``/compact`` request: ``SUMMARY_TEXT`` (``<analysis>`` then
  ``<summary>`` sections).
- ``odd_values``: values JSON allows that PostgreSQL's ``text``/``jsonb`` do not take: a text
  block with U+0000 (``"\u0000"``), then a ``Read`` tool_use whose input holds ``1e400``, a
  40-digit integer and U+0000 (as JSON in the message, inside ``partial_json`` in the stream).
- ``unknown_event``: ``text`` with an ``event: future_event`` in the middle of the stream.
- ``mid_stream_error``: a 200 stream that breaks off with ``event: error`` (overloaded_error);
  without ``stream`` a plain 529.
- ``disconnect``: a 200 stream whose TCP connection is aborted mid-block; without ``stream`` the
  connection is dropped before any response.
- ``slow:<ms>``: ``text``, sleeping <ms> before each event (or once, without ``stream``).
- ``stall:<ms>``: ``text``, with <ms> of silence after the response headers.
- ``error:<status>``: the API's JSON error for that status (any /v1 endpoint).
- ``echo``: a JSON description of the request as received (any /v1 endpoint).

Like the real API (which reads JSON with serde), a Messages body holding a lone surrogate escape
(``"\ud83d"`` with no low half, as Claude Code sends when it cuts a string inside an emoji) is
refused with 400 "The request body is not valid JSON: no low surrogate in string: line 1 column N
(char M)".
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import HTTP
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = (
    "AGENT_PROMPTS",
    "API_VERSION",
    "DEFAULT_API_KEY",
    "DEFAULT_OAUTH_CLIENT_ID",
    "OAUTH_BETA",
    "ORGANIZATION_ID",
    "SCENARIO_HEADER",
    "SDK_API_VERSION",
    "SUMMARY_TEXT",
    "FakeAnthropic",
    "RecordedRequest",
)

API_VERSION = "2023-06-01"
# The version anthropic SDK 2.x sends by default; Claude Code still sends API_VERSION.
SDK_API_VERSION = "2026-10-21"
OAUTH_BETA = "oauth-2025-04-20"
DEFAULT_API_KEY = "sk-ant-api03-test-key"
DEFAULT_OAUTH_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
ORGANIZATION_ID = "2d7f0c1e-5b8a-4f3e-9c11-0a6e4b2f9d31"
SCENARIO_HEADER = "x-fake-scenario"
AGENT_PROMPTS = (
    "Find every HTTP endpoint the service exposes and list each with its handler and file.",
    "Summarise how the test suite is organised: folders, fixtures and how it is run.",
)
SUMMARY_TEXT = (
    "<analysis>\nThe user asked for a configuration review; I read config.toml and proposed changes.\n"
    "</analysis>\n\n<summary>\n1. Primary Request and Intent:\n   The user wants the service configuration"
    " reviewed and the timeouts raised.\n\n2. Key Technical Concepts:\n   - TOML configuration\n"
    "   - HTTP client timeouts\n\n3. Pending Tasks:\n   - Raise the upstream timeout to 600 s.\n</summary>"
)
ACCESS_TOKEN_PREFIX = "sk-ant-oat01-"
REFRESH_TOKEN_PREFIX = "sk-ant-ort01-"

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
# Stored resources carry fixed timestamps: a wall-clock value would make bodies differ run to run.
_CREATED_AT = "2026-08-01T00:00:00Z"
_EXPIRES_AT = "2026-08-02T00:00:00Z"
# Big enough for the API's own limits (32 MB messages, 256 MB batches, 500 MB files).
_MAX_BODY_BYTES = 512 * 1024 * 1024
# How long stop() lets in-flight handlers finish before cancelling them.
_SHUTDOWN_GRACE_SECONDS = 0.05

# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------

# (id, display name, release date, line, context window, max output)
_MODELS: tuple[tuple[str, str, str, str, int, int], ...] = (
    ("claude-fable-5", "Claude Fable 5", "2026-08-12T00:00:00Z", "fable", 1_000_000, 128_000),
    ("claude-opus-5", "Claude Opus 5", "2026-07-24T00:00:00Z", "opus", 1_000_000, 128_000),
    ("claude-sonnet-5", "Claude Sonnet 5", "2026-06-30T00:00:00Z", "sonnet", 1_000_000, 128_000),
    ("claude-opus-4-8", "Claude Opus 4.8", "2026-05-14T00:00:00Z", "opus", 1_000_000, 128_000),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z", "sonnet", 1_000_000, 64_000),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z", "haiku", 200_000, 64_000),
)
# Pre-4.6 aliases resolve to dated ids in responses, as on the real API.
_ALIASES = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    409: ("conflict_error", "The request conflicts with the current state of the resource."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed your account's rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

# ---------------------------------------------------------------------------------------------
# Ids and encodings
# ---------------------------------------------------------------------------------------------

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _sha256(*parts: bytes) -> bytes:
    """Hash several byte strings; each is length-prefixed so ("ab", "c") and ("a", "bc") differ."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.digest()


def _make_id(prefix: str, seed: bytes, purpose: str, length: int = 22) -> str:
    """A deterministic id in the API's style (`msg_01…`, `req_011C…`) derived from `seed`."""
    number = int.from_bytes(_sha256(seed, purpose.encode()), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 58)
        chars.append(_BASE58[digit])
    return prefix + "".join(chars)


# Python cannot write 1e400 as a JSON number; ``odd_values`` writes this marker and ``_dumps``
# swaps it for the number, in the message (quoted) and inside partial_json (escaped quotes).
_HUGE = "__fake_huge_number__"


def _dumps(value: Any) -> bytes:
    """Compact JSON, the way the real API writes bodies and SSE data lines."""
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if _HUGE.encode() in encoded:
        encoded = encoded.replace(b'\\"' + _HUGE.encode() + b'\\"', b"1e400").replace(f'"{_HUGE}"'.encode(), b"1e400")
    return encoded


def _sse(name: str, data: Mapping[str, Any]) -> bytes:
    """One named SSE event: `event:` line, single-line `data:` JSON, blank line."""
    return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


# The real server writes the ping payload with a space after the colon, unlike every other event.
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'

# ---------------------------------------------------------------------------------------------
# Recorded requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as the fake received it: raw path/query, headers in wire order and case."""

    method: str
    path: str
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in the order received."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def betas(self) -> list[str]:
        """The comma-separated `anthropic-beta` values of all such headers, in order."""
        values = ",".join(self.header_values("anthropic-beta"))
        return [beta.strip() for beta in values.split(",") if beta.strip()]

    @property
    def bearer_token(self) -> str | None:
        """The token of an `authorization: Bearer …` header, if any."""
        scheme, _, token = (self.header("authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _decode_header(raw: bytes) -> str:
    # surrogateescape keeps any non-UTF-8 byte recoverable, so nothing is lost in recording.
    return raw.decode("utf-8", "surrogateescape")


async def _record(request: web.Request) -> RecordedRequest:
    path, _, query = request.raw_path.partition("?")
    return RecordedRequest(
        method=request.method,
        path=path,
        query_string=query,
        headers=[(_decode_header(key), _decode_header(value)) for key, value in request.raw_headers],
        body=await request.read(),
    )


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """Raised by handlers; the middleware renders it as the API's JSON error response."""

    def __init__(self, status: int, message: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        fallback_type = "api_error" if status >= 500 else "invalid_request_error"
        self.status = status
        self.headers = dict(headers or {})
        self.error_type, default_message = _ERRORS.get(status, (fallback_type, "Error"))
        self.message = message or default_message
        super().__init__(self.message)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

_PLAIN_SCENARIOS = frozenset(
    {
        "text",
        "tool_use",
        "thinking",
        "agents",
        "summary",
        "odd_values",
        "unknown_event",
        "echo",
        "mid_stream_error",
        "disconnect",
    }
)
_ARGUMENT_SCENARIOS = frozenset({"error", "slow", "stall"})


@dataclass(frozen=True)
class _Scenario:
    """The parsed `x-fake-scenario` header: a name and, for error/slow/stall, a number."""

    name: str
    argument: int = 0

    @classmethod
    def parse(cls, raw: str | None) -> _Scenario | None:
        """Parse the header value; None when it names no scenario this fake knows."""
        if raw is None:
            return cls("text")
        name, colon, argument = raw.strip().partition(":")
        if not colon:
            return cls(name) if name in _PLAIN_SCENARIOS else None
        if name in _ARGUMENT_SCENARIOS and argument.isdigit():
            return cls(name, int(argument))
        return None

    @property
    def seconds(self) -> float:
        """The argument read as milliseconds, in seconds (slow/stall)."""
        return self.argument / 1000

    @property
    def reply_kind(self) -> str:
        """Which message the scenario answers with; the timing/failure scenarios reuse `text`."""
        return self.name if self.name in {"tool_use", "thinking", "agents", "summary", "odd_values"} else "text"


@dataclass(frozen=True)
class _Exchange:
    """Per-request context shared by the middleware and the handlers."""

    request: RecordedRequest
    request_id: str
    scenario: _Scenario | None
    oauth: bool


_EXCHANGE = web.RequestKey("fake_anthropic_exchange", _Exchange)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# ---------------------------------------------------------------------------------------------
# Message generation: one description of a reply, rendered as JSON or as SSE events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A content block: its empty start form, the deltas that build it, and its final form."""

    start: dict[str, Any]
    deltas: tuple[dict[str, Any], ...]
    final: dict[str, Any]


@dataclass(frozen=True)
class _Usage:
    """Token counts of one reply; `provisional_output` is what message_start announces."""

    input_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    output_tokens: int
    provisional_output: int

    def as_message_usage(self, output_tokens: int) -> dict[str, Any]:
        """The full `usage` object of a Message (and of message_start)."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_5m + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_5m,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def as_delta_usage(self) -> dict[str, int]:
        """The cumulative usage of message_delta: input side repeated, final output count."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_5m + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class _Reply:
    """Everything needed to render one assistant message, derived purely from the request."""

    message_id: str
    model: str
    blocks: tuple[_Block, ...]
    stop_reason: str
    usage: _Usage


def _word_chunks(text: str) -> tuple[str, ...]:
    """Split text into word-sized deltas that concatenate back to it exactly."""
    first, *rest = text.split(" ")
    return (first, *(" " + word for word in rest))


def _text_block(text: str) -> _Block:
    deltas = tuple({"type": "text_delta", "text": chunk} for chunk in _word_chunks(text))
    return _Block({"type": "text", "text": ""}, deltas, {"type": "text", "text": text})


def _tool_use_block(tool_id: str, name: str, tool_input: dict[str, Any]) -> _Block:
    # The real fragments use ", " / ": " separators; cutting in thirds splits a token mid-way, and
    # the first fragment is empty, both as observed on the wire.
    encoded = json.dumps(tool_input).replace(f'"{_HUGE}"', "1e400")
    third = len(encoded) // 3
    fragments = ("", encoded[:third], encoded[third : 2 * third], encoded[2 * third :])
    deltas = tuple({"type": "input_json_delta", "partial_json": fragment} for fragment in fragments)
    start = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return _Block(start, deltas, {**start, "input": tool_input})


def _thinking_block(thinking: str, signature: str) -> _Block:
    deltas = (
        *({"type": "thinking_delta", "thinking": chunk} for chunk in _word_chunks(thinking)),
        {"type": "signature_delta", "signature": signature},
    )
    start = {"type": "thinking", "thinking": "", "signature": ""}
    return _Block(start, deltas, {"type": "thinking", "thinking": thinking, "signature": signature})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (block.get("text", "") for block in content if isinstance(block, dict))
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def _echo_text(payload: Mapping[str, Any]) -> str:
    """A short reply quoting the start of the last user message."""
    messages = payload.get("messages")
    user_turns = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    words = _text_of(user_turns[-1].get("content")).split()[:8] if user_turns else []
    return "You said: " + " ".join(words) if words else "You said nothing."


def _canonical(payload: Mapping[str, Any], without: Iterable[str]) -> bytes:
    excluded = set(without)
    return _dumps({key: value for key, value in sorted(payload.items()) if key not in excluded})


# Fields that steer generation but are not part of the prompt, so they do not count as input.
_GENERATION_FIELDS = ("stream", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "metadata")


def _prompt_tokens(payload: Mapping[str, Any]) -> int:
    """A stand-in token count of the prompt (about four bytes per token)."""
    return max(8, len(_canonical(payload, _GENERATION_FIELDS)) // 4)


def _reply_blocks(kind: str, payload: Mapping[str, Any], seed: bytes) -> tuple[tuple[_Block, ...], str]:
    answer = _text_block(_echo_text(payload))
    if kind == "tool_use":
        intro = _text_block("I'll read the config file first.")
        tool = _tool_use_block(_make_id("toolu_01", seed, "tool_use"), "Read", {"file_path": "/srv/app/config.toml"})
        return (intro, tool), "tool_use"
    if kind == "agents":
        intro = _text_block("I'll explore both areas with two agents in parallel.")
        agents = tuple(
            _tool_use_block(
                _make_id("toolu_01", seed, f"agent-{position}"),
                "Agent",
                {"description": f"Explore area {position}", "prompt": prompt, "subagent_type": "general-purpose"},
            )
            for position, prompt in enumerate(AGENT_PROMPTS, start=1)
        )
        return (intro, *agents), "tool_use"
    if kind == "summary":
        return (_text_block(SUMMARY_TEXT),), "end_turn"
    if kind == "odd_values":
        odd = {"big": _HUGE, "long": 1234567890123456789012345678901234567890, "nul": "a\x00b"}
        tool = _tool_use_block(_make_id("toolu_01", seed, "odd"), "Read", odd)
        return (_text_block("A NUL \x00 here. " + _echo_text(payload)), tool), "tool_use"
    if kind == "thinking":
        signature = base64.b64encode(b"\x12" + _sha256(seed, b"signature") * 3).decode()
        thinking = _thinking_block("The user wants a short answer, so I will keep it brief.", signature)
        return (thinking, answer), "end_turn"
    return (answer,), "end_turn"


def _usage(payload: Mapping[str, Any], blocks: tuple[_Block, ...], seed: bytes) -> _Usage:
    prompt = _prompt_tokens(payload)
    encoded = _canonical(payload, ())
    # Like the real API, only a request with cache_control markers reads or writes the cache; its
    # writes land in the TTL bucket it asked for.
    cached = b'"cache_control":' in encoded
    cache_read = prompt * 6 // 10 if cached else 0
    cache_write = prompt * 3 // 10 if cached else 0
    one_hour = b'"ttl":"1h"' in encoded
    return _Usage(
        input_tokens=prompt - cache_read - cache_write,
        cache_write_5m=0 if one_hour else cache_write,
        cache_write_1h=cache_write if one_hour else 0,
        cache_read=cache_read,
        output_tokens=4 + sum(len(_dumps(block.final)) for block in blocks) // 4,
        provisional_output=1 + seed[0] % 3,
    )


def _generate(payload: Mapping[str, Any], kind: str) -> _Reply:
    """The reply to a Messages body. `stream` is left out of the seed so both forms agree."""
    seed = _sha256(kind.encode(), _canonical(payload, ("stream",)))
    blocks, stop_reason = _reply_blocks(kind, payload, seed)
    model = str(payload.get("model"))
    return _Reply(
        message_id=_make_id("msg_01", seed, "message"),
        model=_ALIASES.get(model, model),
        blocks=blocks,
        stop_reason=stop_reason,
        usage=_usage(payload, blocks, seed),
    )


def _forced_tool_call(payload: Mapping[str, Any], name: str, tool_input: Any) -> _Reply:
    """The reply to a request whose ``tool_choice`` names a tool: one call of it."""
    seed = _sha256(b"forced", name.encode(), _canonical(payload, ("stream",)))
    blocks = (_tool_use_block(_make_id("toolu_01", seed, "forced"), name, tool_input),)
    model = str(payload.get("model"))
    return _Reply(
        message_id=_make_id("msg_01", seed, "message"),
        model=_ALIASES.get(model, model),
        blocks=blocks,
        stop_reason="tool_use",
        usage=_usage(payload, blocks, seed),
    )


def _message_json(reply: _Reply) -> dict[str, Any]:
    """The non-streaming Message body."""
    return {
        "id": reply.message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [block.final for block in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": reply.usage.as_message_usage(reply.usage.output_tokens),
    }


def _stream_events(reply: _Reply) -> list[bytes]:
    """The SSE events of the streamed form of `reply`, one bytes object per event."""
    start: dict[str, Any] = {
        "model": reply.model,
        "id": reply.message_id,
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": reply.usage.as_message_usage(reply.usage.provisional_output),
    }
    events = [_sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(reply.blocks):
        events.append(
            _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block.start})
        )
        if index == 0:
            events.append(_PING)
        events.extend(
            _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in block.deltas
        )
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    events.append(
        _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": reply.usage.as_delta_usage()})
    )
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


# message_start, content_block_start, ping, first delta: where the failure scenarios cut in.
_EVENTS_BEFORE_INTERRUPTION = 4


def _overloaded_event(request_id: str) -> bytes:
    error = {"details": None, "type": "overloaded_error", "message": "Overloaded"}
    return _sse("error", {"type": "error", "error": error, "request_id": request_id})


def _scenario_events(scenario: _Scenario, reply: _Reply, request_id: str) -> list[bytes]:
    """The events a scenario sends: the full stream, or a prefix plus an unknown/error event."""
    events = _stream_events(reply)
    cut = _EVENTS_BEFORE_INTERRUPTION
    if scenario.name == "unknown_event":
        future = {"type": "future_event", "detail": "an event type this client has never seen"}
        return [*events[:cut], _sse("future_event", future), *events[cut:]]
    if scenario.name == "mid_stream_error":
        return [*events[:cut], _overloaded_event(request_id)]
    if scenario.name == "disconnect":
        return events[:cut]
    return events


# ---------------------------------------------------------------------------------------------
# Rate-limit headers (fixed values: they must not vary between otherwise identical requests)
# ---------------------------------------------------------------------------------------------

_UNIFIED_RESET = "1790814600"
_UNIFIED_WEEKLY_RESET = "1791244800"
_CLASSIC_RESET = "2026-08-01T00:01:00Z"


def _unified_rate_limit_headers(rejected: bool) -> dict[str, str]:
    """The subscription (OAuth) family; `rejected` is what a subscription-limit 429 carries."""
    status = "rejected" if rejected else "allowed"
    headers = {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-reset": _UNIFIED_RESET,
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-utilization": "1.01" if rejected else "0.05",
        "anthropic-ratelimit-unified-5h-reset": _UNIFIED_RESET,
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": "0.18",
        "anthropic-ratelimit-unified-7d-reset": _UNIFIED_WEEKLY_RESET,
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        "anthropic-ratelimit-unified-fallback-percentage": "0.5",
    }
    if rejected:
        headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = "1.0"
    return headers


def _classic_rate_limit_headers(rejected: bool) -> dict[str, str]:
    """The API-key family: per-minute buckets with RFC 3339 reset times."""
    buckets = {"requests": 4000, "tokens": 2_000_000, "input-tokens": 1_600_000, "output-tokens": 400_000}
    headers = {}
    for bucket, limit in buckets.items():
        headers[f"anthropic-ratelimit-{bucket}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{bucket}-remaining"] = "0" if rejected else str(limit - limit // 1000)
        headers[f"anthropic-ratelimit-{bucket}-reset"] = _CLASSIC_RESET
    return headers


# ---------------------------------------------------------------------------------------------
# Small request/response helpers
# ---------------------------------------------------------------------------------------------


_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)")


def _lone_surrogate(body: bytes) -> str | None:
    """serde_json's complaint about the first lone surrogate escape in ``body``, if any."""
    pending: int | None = None  # offset of a high surrogate waiting for its low half
    for match in _ESCAPE.finditer(body):
        code = int(match.group(1), 16) if match.group(1) else None
        if pending is not None and (code is None or not 0xDC00 <= code <= 0xDFFF or match.start() != pending + 6):
            break
        if code is not None and 0xD800 <= code <= 0xDBFF:
            pending = match.start()
            continue
        if pending is None and code is not None and 0xDC00 <= code <= 0xDFFF:
            return f"lone leading surrogate in hex escape: line 1 column {match.end() + 1} (char {match.end()})"
        pending = None
    if pending is None:
        return None
    return f"no low surrogate in string: line 1 column {pending + 7} (char {pending + 6})"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _ApiError(400, "The request body is not valid JSON.") from None
    if (surrogate := _lone_surrogate(body)) is not None:
        raise _ApiError(400, f"The request body is not valid JSON: {surrogate}")
    if not isinstance(payload, dict):
        raise _ApiError(400, "The request body must be a JSON object.")
    return payload


def _check_version(request: RecordedRequest, accepted: Iterable[str]) -> None:
    version = request.header("anthropic-version")
    if version is None:
        raise _ApiError(400, "anthropic-version: header is required")
    if version not in accepted:
        raise _ApiError(400, f"anthropic-version: invalid version `{version}`")


def _page(items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """A `has_more`/`first_id`/`last_id` page honouring `limit`, `after_id` and `before_id`."""
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise _ApiError(400, "limit: Input should be between 1 and 1000")
    limit = int(limit_text)
    ids = [item["id"] for item in items]
    start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
    end = ids.index(query["before_id"]) if query.get("before_id") in ids else len(items)
    window = items[start:end]
    # Paging backwards (before_id) keeps the items closest to the cursor.
    data = window[-limit:] if "before_id" in query else window[:limit]
    return {
        "data": data,
        "has_more": len(window) > limit,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _model_json(model_id: str) -> dict[str, Any] | None:
    resolved = _ALIASES.get(model_id, model_id)
    for known_id, name, created_at, line, context, max_output in _MODELS:
        if known_id == resolved:
            return {
                "type": "model",
                "id": known_id,
                "display_name": name,
                "created_at": created_at,
                "line": line,
                "lifecycle": "active",
                "deprecated_at": None,
                "retires_at": None,
                "max_input_tokens": context,
                "max_tokens": max_output,
            }
    return None


def _multipart_file(content_type: str, body: bytes) -> tuple[str, str, bytes] | None:
    """The (filename, mime type, bytes) of the `file` field of a multipart/form-data body."""
    # aiohttp's own multipart reader needs the unread stream, but the body was already read for
    # recording; splitting on the boundary by hand keeps the file bytes exact.
    parsed_type = EmailMessage()
    parsed_type["content-type"] = content_type
    boundary = parsed_type.get_param("boundary")
    if not isinstance(boundary, str):
        return None
    for part in body.split(b"--" + boundary.encode())[1:-1]:
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
        if headers.get_param("name", header="content-disposition") == "file":
            filename = headers.get_filename() or "upload"
            mime_type = headers.get_content_type() if headers["content-type"] else "application/octet-stream"
            return filename, mime_type, content.removesuffix(b"\r\n")
    return None


# ---------------------------------------------------------------------------------------------
# In-memory resources
# ---------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    """A message batch. It ends the first time it is read after creation (or after cancel)."""

    id: str
    requests: list[dict[str, Any]]
    status: str = "in_progress"
    canceled: bool = False

    def advance(self) -> None:
        """Finish processing: every request succeeds, or is canceled if cancel came first."""
        self.status = "ended"

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The MessageBatch object."""
        count = len(self.requests)
        ended = self.status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": {
                "processing": 0 if ended else count,
                "succeeded": count if ended and not self.canceled else 0,
                "errored": 0,
                "canceled": count if ended and self.canceled else 0,
                "expired": 0,
            },
            "ended_at": _CREATED_AT if ended else None,
            "created_at": _CREATED_AT,
            "expires_at": _EXPIRES_AT,
            "archived_at": None,
            "cancel_initiated_at": _CREATED_AT if self.canceled else None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }

    def results_jsonl(self) -> bytes:
        """One JSON line per request, in submission order."""
        lines = []
        for entry in self.requests:
            if self.canceled:
                result: dict[str, Any] = {"type": "canceled"}
            else:
                params = entry.get("params")
                reply = _generate(params if isinstance(params, dict) else {}, "text")
                result = {"type": "succeeded", "message": _message_json(reply)}
            lines.append(_dumps({"custom_id": entry.get("custom_id"), "result": result}) + b"\n")
        return b"".join(lines)


@dataclass(frozen=True)
class _StoredFile:
    """An uploaded file and its metadata."""

    id: str
    filename: str
    mime_type: str
    content: bytes

    def to_json(self) -> dict[str, Any]:
        """The FileMetadata object."""
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.content),
            "created_at": _CREATED_AT,
            "downloadable": True,
        }


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


@dataclass
class _Recordings:
    """What tests inspect, guarded by one condition so waiting for a change is possible."""

    requests: list[RecordedRequest] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled_streams: list[RecordedRequest] = field(default_factory=list)


class FakeAnthropic:
    """An api.anthropic.com look-alike on 127.0.0.1:<ephemeral>, run in a background thread.

    Use as ``with FakeAnthropic() as fake:`` (or ``start()``/``stop()``) and point clients at
    ``fake.url``. ``api_keys``, ``oauth_tokens`` (access token -> expiry in unix seconds,
    ``float("inf")`` for never) and ``refresh_tokens`` (refresh token -> the access token it last
    issued) may be changed while running. Tests inspect ``requests``, ``last_request``,
    ``token_requests`` and ``cancelled_streams``, and can block on ``wait_for(predicate)``.
    ``unified_status`` (e.g. ``"allowed_warning"``), when set, is the unified rate-limit status
    (overall and five-hour) of the answers to OAuth requests that are not 429s, and
    ``unified_utilization`` (e.g. ``"0.85"``) their five-hour utilization.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        oauth_tokens: Mapping[str, float] | None = None,
        refresh_tokens: Mapping[str, str] | None = None,
        require_auth: bool = True,
        oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID,
        token_delay_ms: int = 0,
        access_token_ttl: int = 28_800,
        api_versions: Iterable[str] = (API_VERSION, SDK_API_VERSION),
    ) -> None:
        self.api_keys: set[str] = set(api_keys)
        self.oauth_tokens: dict[str, float] = dict(oauth_tokens or {})
        self.refresh_tokens: dict[str, str] = dict(refresh_tokens or {})
        self.require_auth = require_auth
        self.oauth_client_id = oauth_client_id
        self.token_delay_ms = token_delay_ms
        self.access_token_ttl = access_token_ttl
        self.api_versions: set[str] = set(api_versions)
        self.unified_status: str | None = None
        self.unified_utilization: str | None = None
        self.unified_reset: str | None = None  # epoch seconds for every unified reset (default: fixed)
        # Per OAuth access token: its five-hour utilization, or that it is out (a 429 "rejected").
        self.utilization_of: dict[str, str] = {}
        self.rejected_tokens: set[str] = set()  # OAuth access tokens or API keys
        # Per API key: the share of its per-minute token bucket left (the classic headers).
        self.key_remaining_of: dict[str, float] = {}
        self._changed = threading.Condition()
        self._recordings = _Recordings()
        self._batches: dict[str, _Batch] = {}
        self._files: dict[str, _StoredFile] = {}
        self._serial = 0
        self._failures: collections.deque[tuple[int, dict[str, str]]] = collections.deque()
        # Inputs of the tool calls a request forcing a tool (``tool_choice: {type: tool}``) gets, in order.
        self._forced_tool_inputs: collections.deque[Any] = collections.deque()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._port: int | None = None

    def fail_next(self, *statuses: int, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``len(statuses)`` API requests with these error statuses (and
        ``headers``), whatever they ask; normal service resumes afterwards."""
        with self._changed:
            self._failures.extend((status, dict(headers or {})) for status in statuses)

    def answer_forced_tool_with(self, *inputs: Any) -> None:
        """The next requests that force a tool get a call of it with these inputs, as Claude
        answers them (``{}`` once these are used up)."""
        with self._changed:
            self._forced_tool_inputs.extend(inputs)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        """Bind an ephemeral loopback port and serve from a background thread."""
        if self._thread is not None:
            raise RuntimeError("FakeAnthropic is already running")
        ready = threading.Event()
        failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failures), name="fake-anthropic", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=5):
            raise RuntimeError("FakeAnthropic did not start within 5 s")
        if failures:
            self._thread.join()
            self._thread = None
            raise RuntimeError("FakeAnthropic failed to start") from failures[0]
        return self

    def stop(self) -> None:
        """Close the server, cancel in-flight handlers and join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=5)
        self._thread = self._loop = self._stop_event = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failures: list[BaseException]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as error:
            failures.append(error)  # start() re-raises it when it happens before `ready`
        finally:
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        runner = web.AppRunner(
            self._build_app(),
            # Cancel a handler when its client disconnects, so slow streams notice at once.
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
        )
        await runner.setup()
        # A socket bound here avoids the resolver thread pool create_server(host=…) would start.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        try:
            await web.SockSite(runner, sock).start()
            self._port = sock.getsockname()[1]
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            ready.set()
            await self._stop_event.wait()
        finally:
            await runner.cleanup()
            sock.close()

    # -- what tests look at ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._port is None or self._thread is None:
            raise RuntimeError("FakeAnthropic is not running")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43125``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        with self._changed:
            return list(self._recordings.requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; LookupError if there was none."""
        with self._changed:
            if not self._recordings.requests:
                raise LookupError("FakeAnthropic has not received any request")
            return self._recordings.requests[-1]

    @property
    def token_requests(self) -> list[dict[str, Any]]:
        """Parsed bodies of the calls to the OAuth token endpoint ({} when not a JSON object)."""
        with self._changed:
            return list(self._recordings.token_requests)

    @property
    def cancelled_streams(self) -> list[RecordedRequest]:
        """Requests whose SSE stream was cut short because the client went away (or stop() ran)."""
        with self._changed:
            return list(self._recordings.cancelled_streams)

    def clear(self) -> None:
        """Forget recorded requests, token requests and cancelled streams."""
        with self._changed:
            self._recordings = _Recordings()

    def wait_for(self, predicate: Callable[[], object], timeout: float = 2.0) -> bool:
        """Block until `predicate()` is truthy (re-checked on every recording); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: bool(predicate()), timeout=timeout)

    def _append(self, pick: Callable[[_Recordings], list[Any]], item: Any) -> None:
        with self._changed:
            pick(self._recordings).append(item)
            self._changed.notify_all()

    def _next_serial(self) -> bytes:
        self._serial += 1
        return str(self._serial).encode()

    # -- plumbing ----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=_MAX_BODY_BYTES)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model_id}", self._get_model)
        app.router.add_post("/v1/messages/batches", self._create_batch)
        app.router.add_get("/v1/messages/batches", self._list_batches)
        app.router.add_get("/v1/messages/batches/{batch_id}", self._get_batch)
        app.router.add_post("/v1/messages/batches/{batch_id}/cancel", self._cancel_batch)
        app.router.add_delete("/v1/messages/batches/{batch_id}", self._delete_batch)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", self._batch_results)
        app.router.add_post("/v1/files", self._upload_file)
        app.router.add_get("/v1/files", self._list_files)
        app.router.add_get("/v1/files/{file_id}", self._get_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_delete("/v1/files/{file_id}", self._delete_file)
        app.router.add_post("/v1/oauth/token", self._oauth_token)
        return app

    def _exchange_for(self, recorded: RecordedRequest) -> _Exchange:
        raw_scenario = recorded.header(SCENARIO_HEADER)
        seed = _sha256(
            recorded.method.encode(),
            recorded.path.encode(),
            recorded.query_string.encode(),
            (raw_scenario or "").encode(),
            recorded.body,
        )
        bearer = recorded.bearer_token
        oauth = bearer is not None and (bearer.startswith(ACCESS_TOKEN_PREFIX) or bearer in self.oauth_tokens)
        return _Exchange(recorded, _make_id("req_011C", seed, "request", 20), _Scenario.parse(raw_scenario), oauth)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        recorded = await _record(request)
        self._append(lambda r: r.requests, recorded)
        exchange = self._exchange_for(recorded)
        request[_EXCHANGE] = exchange
        try:
            return await self._dispatch(request, handler, exchange)
        except _ApiError as error:
            return self._error_response(exchange, error)

    async def _dispatch(self, request: web.Request, handler: _Handler, exchange: _Exchange) -> web.StreamResponse:
        # Unknown paths and wrong methods answer like the API does, not with aiohttp's text page.
        if request.match_info.http_exception is not None:
            raise _ApiError(404)
        if request.path.startswith("/v1/oauth/"):
            return await handler(request)
        if self.require_auth:
            self._authenticate(exchange.request)
        if {exchange.request.bearer_token, exchange.request.header("x-api-key")} & self.rejected_tokens:
            raise _ApiError(429, "This request would exceed your account's rate limit.")
        with self._changed:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            raise _ApiError(failure[0], headers=failure[1])
        scenario = exchange.scenario
        if scenario is None:
            raise _ApiError(400, f"Unknown {SCENARIO_HEADER}: {exchange.request.header(SCENARIO_HEADER)}")
        if scenario.name == "error":
            raise _ApiError(scenario.argument)
        if scenario.name == "echo":
            return self._json_response(exchange, self._echo_body(exchange.request))
        return await handler(request)

    def _authenticate(self, request: RecordedRequest) -> None:
        api_key, bearer = request.header("x-api-key"), request.bearer_token
        if api_key is None and bearer is None:
            raise _ApiError(401, "x-api-key header is required")
        if api_key in self.api_keys or bearer in self.api_keys:
            return
        if bearer is not None and (bearer.startswith(ACCESS_TOKEN_PREFIX) or bearer in self.oauth_tokens):
            self._check_oauth_token(bearer, request)
            return
        raise _ApiError(401, "invalid x-api-key")

    def _check_oauth_token(self, token: str, request: RecordedRequest) -> None:
        if OAUTH_BETA not in request.betas:
            raise _ApiError(401, "OAuth authentication is currently not supported.")
        expiry = self.oauth_tokens.get(token)
        if expiry is None:
            raise _ApiError(401, "Invalid bearer token")
        if expiry <= time.time():
            raise _ApiError(401, "OAuth token has expired. Please obtain a new token.")

    def _api_headers(self, exchange: _Exchange, content_type: str, *, rejected: bool = False) -> dict[str, str]:
        headers = {
            "content-type": content_type,
            "request-id": exchange.request_id,
            "anthropic-organization-id": ORGANIZATION_ID,
        }
        if content_type == _SSE:
            headers["cache-control"] = "no-cache"
        rate_limits = _unified_rate_limit_headers if exchange.oauth else _classic_rate_limit_headers
        headers.update(rate_limits(rejected))
        if exchange.oauth and not rejected and self.unified_status is not None:
            headers["anthropic-ratelimit-unified-status"] = self.unified_status
            headers["anthropic-ratelimit-unified-5h-status"] = self.unified_status
        if exchange.oauth and not rejected and self.unified_utilization is not None:
            headers["anthropic-ratelimit-unified-5h-utilization"] = self.unified_utilization
        left = self.key_remaining_of.get(exchange.request.header("x-api-key") or "")
        if not exchange.oauth and not rejected and left is not None:
            limit = int(headers["anthropic-ratelimit-tokens-limit"])
            headers["anthropic-ratelimit-tokens-remaining"] = str(int(limit * left))
        if exchange.oauth and self.unified_reset is not None:
            headers["anthropic-ratelimit-unified-reset"] = headers["anthropic-ratelimit-unified-5h-reset"] = (
                self.unified_reset
            )
        own = self.utilization_of.get(exchange.request.bearer_token or "")
        if exchange.oauth and not rejected and own is not None:
            headers["anthropic-ratelimit-unified-5h-utilization"] = own
        return headers

    def _json_response(self, exchange: _Exchange, body: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, body=_dumps(body), headers=self._api_headers(exchange, _JSON))

    def _error_response(self, exchange: _Exchange, error: _ApiError) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": error.error_type, "message": error.message},
            "request_id": exchange.request_id,
        }
        headers = self._api_headers(exchange, _JSON, rejected=error.status == 429)
        if error.status == 429:
            headers.update({"retry-after": "17", "x-should-retry": "true"})
        headers.update(error.headers)
        return web.Response(status=error.status, body=_dumps(body), headers=headers)

    @staticmethod
    def _echo_body(request: RecordedRequest) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": [list(pair) for pair in request.headers],
            "body_sha256": hashlib.sha256(request.body).hexdigest(),
        }

    # -- messages ------------------------------------------------------------------------------------

    def _messages_payload(self, request: RecordedRequest, required: tuple[str, ...]) -> dict[str, Any]:
        _check_version(request, self.api_versions)
        payload = _json_object(request.body)
        for name in required:
            if name not in payload:
                raise _ApiError(400, f"{name}: Field required")
        model = payload["model"]
        if not isinstance(model, str) or not model.startswith("claude-"):
            raise _ApiError(404, f"model: {model}")
        return payload

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        exchange = request[_EXCHANGE]
        payload = self._messages_payload(exchange.request, ("model", "messages", "max_tokens"))
        scenario = exchange.scenario or _Scenario("text")
        choice = payload.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool" and scenario.reply_kind == "text":
            with self._changed:
                tool_input = self._forced_tool_inputs.popleft() if self._forced_tool_inputs else {}
            reply = _forced_tool_call(payload, str(choice.get("name")), tool_input)
        else:
            reply = _generate(payload, scenario.reply_kind)
        if payload.get("stream") is True:
            return await self._stream(request, exchange, scenario, reply)
        return await self._non_streaming(request, exchange, scenario, reply)

    async def _non_streaming(
        self, request: web.Request, exchange: _Exchange, scenario: _Scenario, reply: _Reply
    ) -> web.StreamResponse:
        if scenario.name == "mid_stream_error":
            # Without a stream to break, the same upstream failure surfaces as a plain 529.
            raise _ApiError(529)
        if scenario.name == "disconnect":
            _abort_connection(request)
            return web.Response()
        if scenario.name in {"slow", "stall"}:
            await asyncio.sleep(scenario.seconds)
        return self._json_response(exchange, _message_json(reply))

    async def _stream(
        self, request: web.Request, exchange: _Exchange, scenario: _Scenario, reply: _Reply
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers=self._api_headers(exchange, _SSE))
        try:
            await response.prepare(request)  # sends the status line and headers right away
            if scenario.name == "stall":
                await asyncio.sleep(scenario.seconds)
            for event in _scenario_events(scenario, reply, exchange.request_id):
                if scenario.name == "slow":
                    await asyncio.sleep(scenario.seconds)
                await response.write(event)  # one write per event, so each leaves immediately
            if scenario.name == "disconnect":
                _abort_connection(request)  # no chunked terminator: the client sees a torn body
                return response
            await response.write_eof()
        except asyncio.CancelledError:
            self._append(lambda r: r.cancelled_streams, exchange.request)
            raise
        except ConnectionError:
            # Returning (not raising) lets aiohttp finish quietly instead of logging a 500.
            self._append(lambda r: r.cancelled_streams, exchange.request)
        return response

    async def _count_tokens(self, request: web.Request) -> web.Response:
        exchange = request[_EXCHANGE]
        payload = self._messages_payload(exchange.request, ("model", "messages"))
        return self._json_response(exchange, {"input_tokens": _prompt_tokens(payload)})

    # -- models -------------------------------------------------------------------------------------

    async def _list_models(self, request: web.Request) -> web.Response:
        models = [_model_json(model[0]) or {} for model in _MODELS]
        return self._json_response(request[_EXCHANGE], _page(models, request.query))

    async def _get_model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]
        model = _model_json(model_id)
        if model is None:
            raise _ApiError(404, f"model: {model_id}")
        return self._json_response(request[_EXCHANGE], model)

    # -- batches ------------------------------------------------------------------------------------

    def _batch(self, request: web.Request) -> _Batch:
        batch = self._batches.get(request.match_info["batch_id"])
        if batch is None:
            raise _ApiError(404, f"message_batch: {request.match_info['batch_id']}")
        return batch

    async def _create_batch(self, request: web.Request) -> web.Response:
        exchange = request[_EXCHANGE]
        entries = _json_object(exchange.request.body).get("requests")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise _ApiError(400, "requests: Input should be a non-empty list of objects")
        batch_id = _make_id("msgbatch_01", exchange.request.body + self._next_serial(), "batch")
        batch = self._batches[batch_id] = _Batch(batch_id, entries)
        return self._json_response(exchange, batch.to_json(self.url))

    async def _list_batches(self, request: web.Request) -> web.Response:
        for batch in self._batches.values():
            batch.advance()
        newest_first = [batch.to_json(self.url) for batch in reversed(self._batches.values())]
        return self._json_response(request[_EXCHANGE], _page(newest_first, request.query))

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        batch.advance()
        return self._json_response(request[_EXCHANGE], batch.to_json(self.url))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if batch.status != "ended":
            batch.canceled, batch.status = True, "canceling"
        return self._json_response(request[_EXCHANGE], batch.to_json(self.url))

    async def _delete_batch(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if batch.status != "ended":
            raise _ApiError(400, "Batches that are in progress cannot be deleted; cancel them first.")
        del self._batches[batch.id]
        return self._json_response(request[_EXCHANGE], {"id": batch.id, "type": "message_batch_deleted"})

    async def _batch_results(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        batch.advance()
        headers = self._api_headers(request[_EXCHANGE], "application/binary")
        return web.Response(body=batch.results_jsonl(), headers=headers)

    # -- files -----------------------------------------------------------------------------------------

    def _stored_file(self, request: web.Request) -> _StoredFile:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            raise _ApiError(404, f"File not found: {request.match_info['file_id']}")
        return stored

    async def _upload_file(self, request: web.Request) -> web.Response:
        exchange = request[_EXCHANGE]
        upload = _multipart_file(exchange.request.header("content-type") or "", exchange.request.body)
        if upload is None:
            raise _ApiError(400, "file: Field required")
        filename, mime_type, content = upload
        file_id = _make_id("file_011C", exchange.request.body + self._next_serial(), "file", 20)
        stored = self._files[file_id] = _StoredFile(file_id, filename, mime_type, content)
        return self._json_response(exchange, stored.to_json())

    async def _list_files(self, request: web.Request) -> web.Response:
        newest_first = [stored.to_json() for stored in reversed(self._files.values())]
        return self._json_response(request[_EXCHANGE], _page(newest_first, request.query))

    async def _get_file(self, request: web.Request) -> web.Response:
        return self._json_response(request[_EXCHANGE], self._stored_file(request).to_json())

    async def _file_content(self, request: web.Request) -> web.Response:
        stored = self._stored_file(request)
        return web.Response(body=stored.content, headers=self._api_headers(request[_EXCHANGE], stored.mime_type))

    async def _delete_file(self, request: web.Request) -> web.Response:
        stored = self._stored_file(request)
        del self._files[stored.id]
        return self._json_response(request[_EXCHANGE], {"id": stored.id, "type": "file_deleted"})

    # -- OAuth token endpoint -----------------------------------------------------------------------

    async def _oauth_token(self, request: web.Request) -> web.Response:
        body = request[_EXCHANGE].request.body
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        self._append(lambda r: r.token_requests, payload if isinstance(payload, dict) else {})
        if self.token_delay_ms:
            await asyncio.sleep(self.token_delay_ms / 1000)
        if not isinstance(payload, dict) or "client_id" not in payload or "grant_type" not in payload:
            return _oauth_error("invalid_request", "Invalid request format")
        if payload["client_id"] != self.oauth_client_id:
            return _oauth_error("invalid_client", "Client authentication failed")
        if payload["grant_type"] != "refresh_token":
            return _oauth_error("unsupported_grant_type", "Unsupported grant type")
        tokens = self._rotate(payload.get("refresh_token"))
        if tokens is None:
            return _oauth_error("invalid_grant", "Refresh token not found or invalid")
        access_token, refresh_token = tokens
        return web.json_response(
            {
                "token_type": "Bearer",
                "access_token": access_token,
                "expires_in": self.access_token_ttl,
                "refresh_token": refresh_token,
                "scope": "user:inference user:profile",
                "organization": {"uuid": ORGANIZATION_ID, "name": "Fake Organization"},
                "account": {"uuid": "5b0c9a3e-7f41-4d2b-9e8a-1c6f2d4b7a90", "email_address": "dev@example.com"},
            },
            dumps=lambda value: _dumps(value).decode(),
        )

    def _rotate(self, refresh_token: object) -> tuple[str, str] | None:
        """Consume `refresh_token` and mint a new access/refresh pair; None if it is not valid."""
        # Check and consume with no await in between: of two concurrent refreshes of one token,
        # exactly one wins, as with the real rotating endpoint.
        if not isinstance(refresh_token, str) or refresh_token not in self.refresh_tokens:
            return None
        del self.refresh_tokens[refresh_token]
        seed = refresh_token.encode() + self._next_serial()
        access_token = ACCESS_TOKEN_PREFIX + _make_id("", seed, "access", 40)
        new_refresh_token = REFRESH_TOKEN_PREFIX + _make_id("", seed, "refresh", 40)
        self.oauth_tokens[access_token] = time.time() + self.access_token_ttl
        self.refresh_tokens[new_refresh_token] = access_token
        return access_token, new_refresh_token


def _oauth_error(error: str, description: str) -> web.Response:
    """An RFC 6749 error body, the shape the token endpoint uses."""
    return web.json_response({"error": error, "error_description": description}, status=400)


def _abort_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
