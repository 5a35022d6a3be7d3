"""The final Message JSON of a streamed response, rebuilt from its raw SSE bytes.

A streamed exchange is stored like a non-streamed one, so the recorder needs the Message
the client effectively received. The rebuild is lenient because the stream may be cut
short, end in ``event: error``, or carry events and block types newer than this code:
whatever was received is kept, whatever is not understood is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from nexus.domain import json_text
from nexus.domain.sse import sse_events
from nexus.domain.usage import TokenUsage, WireUsage, overwrite_usage

# Usage fields folded through TokenUsage; any other usage field (service_tier,
# server_tool_use, inference_geo...) is carried over as received, last value wins.
_COUNTER_FIELDS = frozenset(
    {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation"}
)
# Deltas whose text is appended to a field of the block, keyed by delta type.
_APPENDED = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


class _Draft:
    """One content block being rebuilt. Mutable, and never leaves this module."""

    __slots__ = ("block", "citations", "parts")

    def __init__(self, block: dict[str, Any]) -> None:
        self.block = dict(block)
        # Fragments are joined once at the end: appending to a str per delta is quadratic.
        self.parts: dict[str, list[str]] = {}
        self.citations: list[Any] = []


class _State:
    """What the stream has said so far. Mutable, and never leaves this module."""

    __slots__ = ("drafts", "message", "usage", "usage_extras")

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.drafts: dict[int, _Draft] = {}
        self.usage: TokenUsage | None = None
        self.usage_extras: dict[str, Any] = {}


def rebuild_message(stream: bytes) -> dict[str, Any] | None:
    """Rebuild the Message a stream amounts to.

    Content blocks are rebuilt per index: text and thinking deltas are concatenated, the
    last signature kept, citations appended, and ``input_json_delta`` fragments parsed
    into ``input`` (``{}`` when empty, ``{"_raw": <text>}`` when not valid JSON, as the
    original proxy stored it). Usage takes the input side from ``message_start`` and lets
    each ``message_delta`` overwrite the fields it carries.

    Args:
        stream: The raw SSE bytes, whole or cut short.

    Returns:
        ``{id, type, role, model, content, stop_reason, stop_sequence, usage}`` plus any
        other top-level field the stream carried; None when there is no ``message_start``.
        A block still open when the stream stopped is included as far as it got; usage is
        None when no event carried any.
    """
    state = _State()
    for raw_name, data, _, _ in sse_events(stream):
        try:
            event = json_text.loads(data)
        except msgspec.MsgspecError:
            continue  # a torn last event, or a comment-only chunk
        if not isinstance(event, dict):
            continue
        # Dispatch on the SSE name like the SDKs do; data-only streams name it in ``type``.
        name = raw_name.decode("utf-8", "replace") or str(event.get("type", ""))
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(state, event)
    return _assemble(state, state.message) if state.message is not None else None


def _on_message_start(state: _State, event: dict[str, Any]) -> None:
    message = event.get("message")
    if state.message is not None or not isinstance(message, dict):
        return  # only the first start counts: a repeat would reset usage mid-message
    state.message = message
    _fold_usage(state, message.get("usage"))
    content = message.get("content")
    if isinstance(content, list):
        state.drafts = {index: _Draft(block) for index, block in enumerate(content) if isinstance(block, dict)}


def _on_block_start(state: _State, event: dict[str, Any]) -> None:
    index, block = event.get("index"), event.get("content_block")
    if isinstance(index, int) and isinstance(block, dict):
        state.drafts[index] = _Draft(block)


def _on_block_delta(state: _State, event: dict[str, Any]) -> None:
    index, delta = event.get("index"), event.get("delta")
    if not isinstance(index, int) or not isinstance(delta, dict):
        return
    draft = state.drafts.get(index)
    if draft is None:
        return  # its content_block_start was lost: there is no type to rebuild it as
    kind = delta.get("type")
    if not isinstance(kind, str):
        return  # not a delta type at all (and a list or an object cannot even be looked up)
    if kind in _APPENDED:
        field = _APPENDED[kind]
        value = delta.get(field)
        if isinstance(value, str):
            draft.parts.setdefault(field, []).append(value)
    elif kind == "signature_delta" and isinstance(delta.get("signature"), str):
        draft.block["signature"] = delta["signature"]
    elif kind == "citations_delta" and "citation" in delta:
        draft.citations.append(delta["citation"])


def _on_message_delta(state: _State, event: dict[str, Any]) -> None:
    if state.message is None:
        return  # a delta with no message to apply it to
    delta = event.get("delta")
    if isinstance(delta, dict):
        # stop_reason, stop_sequence, and newer fields such as stop_details or container.
        state.message.update({key: value for key, value in delta.items() if value is not None})
    if event.get("context_management") is not None:
        state.message["context_management"] = event["context_management"]
    _fold_usage(state, event.get("usage"))


_HANDLERS: dict[str, Callable[[_State, dict[str, Any]], None]] = {
    "message_start": _on_message_start,
    "content_block_start": _on_block_start,
    "content_block_delta": _on_block_delta,
    "message_delta": _on_message_delta,
}


def _fold_usage(state: _State, usage: object) -> None:
    if not isinstance(usage, dict):
        return
    try:
        wire = json_text.convert(usage, WireUsage)
    except msgspec.ValidationError:
        return  # a counter of the wrong type: keep what was known
    state.usage = overwrite_usage(state.usage, wire)
    state.usage_extras.update(
        {key: value for key, value in usage.items() if key not in _COUNTER_FIELDS and value is not None}
    )


def _assemble(state: _State, start: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": start.get("id"),
        "type": "message",
        "role": start.get("role", "assistant"),
        "model": start.get("model"),
        "content": [_finish(state.drafts[index]) for index in sorted(state.drafts)],
        "stop_reason": start.get("stop_reason"),
        "stop_sequence": start.get("stop_sequence"),
        "usage": _usage_json(state.usage, state.usage_extras),
    }
    message.update({key: value for key, value in start.items() if key not in message})
    return message


def _finish(draft: _Draft) -> dict[str, Any]:
    block = dict(draft.block)
    for field in ("text", "thinking"):
        if field in draft.parts:
            block[field] = str(block.get(field) or "") + "".join(draft.parts[field])
    if draft.citations:
        earlier = block.get("citations")
        block["citations"] = [*(earlier if isinstance(earlier, list) else []), *draft.citations]
    if "partial_json" in draft.parts:
        block["input"] = _parse_input("".join(draft.parts["partial_json"]))
    return block


def _parse_input(text: str) -> Any:
    if not text.strip():
        return {}  # a tool called without arguments streams only empty fragments
    try:
        return json_text.loads(text)
    except msgspec.MsgspecError:
        return {"_raw": text}  # cut off mid-JSON: keep it readable rather than lose it


def _usage_json(usage: TokenUsage | None, extras: dict[str, Any]) -> dict[str, Any] | None:
    if usage is None:
        return None
    wire: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }
    split = {
        name: value
        for name, value in (
            ("ephemeral_5m_input_tokens", usage.cache_creation_5m_input_tokens),
            ("ephemeral_1h_input_tokens", usage.cache_creation_1h_input_tokens),
        )
        if value is not None
    }
    if split:
        wire["cache_creation"] = split
    wire["output_tokens"] = usage.output_tokens
    return wire | extras
