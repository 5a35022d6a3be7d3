"""Facts about a response that accounting and telemetry need: model, stop reason, token usage.

Usage in a stream is split: ``message_start`` carries the input side (and a provisional
output count), every ``message_delta`` carries cumulative values that overwrite, never add.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from nexus.domain import json_text
from nexus.domain.sse import sse_events

# A token count as the API can mean it: a whole number below 2**31 (a million-token context is
# far below). Anything else is a broken or hostile upstream, and is read as no usage at all
# rather than stored as a count no report could trust (or no database column could take).
Count = Annotated[int, msgspec.Meta(ge=0, lt=2**31)]


class TokenUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None


class ResponseFacts(msgspec.Struct, frozen=True, kw_only=True):
    model: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    usage: TokenUsage | None = None
    tool_calls: int = 0
    complete: bool = False


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: Count | None = None
    ephemeral_1h_input_tokens: Count | None = None


class WireUsage(msgspec.Struct):
    """The counters of a wire ``usage`` object; absent or null fields stay None."""

    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cache_creation_input_tokens: Count | None = None
    cache_read_input_tokens: Count | None = None
    cache_creation: _CacheCreation | None = None


class _Block(msgspec.Struct):
    type: str = ""


class _Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: WireUsage | None = None
    content: list[_Block] = msgspec.field(default_factory=list)


class _MessageStart(msgspec.Struct):
    message: _Message


class _Delta(msgspec.Struct):
    stop_reason: str | None = None


class _MessageDelta(msgspec.Struct):
    delta: _Delta | None = None
    usage: WireUsage | None = None


class _BlockStart(msgspec.Struct):
    content_block: _Block


_message = json_text.decoder(_Message)
_message_start = json_text.decoder(_MessageStart)
_message_delta = json_text.decoder(_MessageDelta)
_block_start = json_text.decoder(_BlockStart)


def overwrite_usage(current: TokenUsage | None, wire: WireUsage | None) -> TokenUsage | None:
    """Fold one wire ``usage`` object into what is known so far.

    Every field present in ``wire`` replaces the current value, because the API sends
    cumulative values (``message_delta``) or final ones (``message_start`` input side);
    adding them would double-count.

    Args:
        current: Usage known so far, or None when nothing has been seen yet.
        wire: The ``usage`` object of the next message or event, or None.

    Returns:
        The updated usage; None only when both arguments are None.
    """
    if wire is None:
        return current
    base = current or TokenUsage()
    changes = {
        name: value
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if (value := getattr(wire, name)) is not None
    }
    if wire.cache_creation is not None:
        if wire.cache_creation.ephemeral_5m_input_tokens is not None:
            changes["cache_creation_5m_input_tokens"] = wire.cache_creation.ephemeral_5m_input_tokens
        if wire.cache_creation.ephemeral_1h_input_tokens is not None:
            changes["cache_creation_1h_input_tokens"] = wire.cache_creation.ephemeral_1h_input_tokens
    return msgspec.structs.replace(base, **changes)


def facts_from_message(body: bytes) -> ResponseFacts | None:
    """From a non-streaming Message JSON; None when the body is not one."""
    try:
        message = _message(body)
    except msgspec.MsgspecError:
        return None
    return ResponseFacts(
        model=message.model,
        message_id=message.id,
        stop_reason=message.stop_reason,
        usage=overwrite_usage(None, message.usage),
        tool_calls=sum(1 for block in message.content if block.type == "tool_use"),
        complete=message.stop_reason is not None,
    )


def facts_from_sse(stream: bytes) -> ResponseFacts:
    """From the raw bytes of an SSE stream, whole or cut short."""
    model = message_id = stop_reason = None
    usage: TokenUsage | None = None
    tool_calls = 0
    complete = False
    for name, data, _, _ in sse_events(stream):
        try:
            if name == b"message_start":
                start = _message_start(data).message
                model, message_id = start.model, start.id
                usage = overwrite_usage(usage, start.usage)
            elif name == b"message_delta":
                delta = _message_delta(data)
                usage = overwrite_usage(usage, delta.usage)
                if delta.delta is not None and delta.delta.stop_reason is not None:
                    stop_reason = delta.delta.stop_reason
            elif name == b"content_block_start":
                tool_calls += _block_start(data).content_block.type == "tool_use"
            elif name == b"message_stop":
                complete = True
        except msgspec.MsgspecError:
            continue  # a torn or unknown event says nothing about usage
    return ResponseFacts(
        model=model,
        message_id=message_id,
        stop_reason=stop_reason,
        usage=usage,
        tool_calls=tool_calls,
        complete=complete,
    )
