"""A stream's SSE events as the request page lists them: the first ones summarised in a line
each, the last few too when there are more, the rest only counted (a long stream is never
decoded whole)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from nexus.domain.sse import SseEvent, sse_events

TIMELINE_HEAD = 200  # events listed from the start of a stream...
TIMELINE_TAIL = 5  # ...and from its end, when there are more
SUMMARY_LENGTH = 80


class StreamEvent(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # 1-based position in the stream
    name: str
    index: int | None
    summary: str
    size: int
    offset: int  # bytes of the stream up to and including this event


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    head: list[StreamEvent]
    tail: list[StreamEvent]
    omitted: int  # events between head and tail, not listed
    total_events: int
    total_bytes: int


def parse_timeline(stream: bytes, *, head: int = TIMELINE_HEAD, tail: int = TIMELINE_TAIL) -> Timeline:
    """The SSE events of ``stream`` in order: the first ``head`` summarised, and when there are
    more, the last ``tail`` too; the others are only counted (never decoded)."""
    first: list[StreamEvent] = []
    last: deque[tuple[int, SseEvent]] = deque(maxlen=tail)
    count = 0
    for event in sse_events(stream):
        count += 1
        if count <= head:
            first.append(_event(count, event))
        else:
            last.append((count, event))
    ending = [_event(*item) for item in last]
    return Timeline(
        head=first,
        tail=ending,
        omitted=max(count - len(first) - len(ending), 0),
        total_events=count,
        total_bytes=len(stream),
    )


def _event(number: int, sse: SseEvent) -> StreamEvent:
    try:
        payload: Any = json.loads(sse.data) if sse.data else None
    except ValueError:
        payload = None
    event = payload if isinstance(payload, dict) else {}
    name = sse.name.decode("utf-8", "replace") or str(event.get("type") or "") or "(unnamed)"
    index = event.get("index")
    summary = _summary(name, event) if event else _short(sse.data.decode("utf-8", "replace"))
    if payload is None and sse.data:
        summary = "(not JSON) " + summary
    return StreamEvent(
        number=number,
        name=name[:SUMMARY_LENGTH],
        index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        summary=summary,
        size=sse.end - sse.start,
        offset=sse.end,
    )


def _summary(name: str, event: dict[str, Any]) -> str:
    """A line on what an event says (plain text: the template escapes it)."""
    if name in ("content_block_stop", "message_stop", "ping"):
        return ""
    describe = _DESCRIBE.get(name)
    text = describe(event) if describe else json.dumps(event, ensure_ascii=False, default=str)
    return _short(text)


def _message_start(event: dict[str, Any]) -> str:
    message = _mapping(event.get("message"))
    parts = [str(message.get("id") or ""), str(message.get("model") or ""), _usage_text(_mapping(message.get("usage")))]
    return " · ".join(part for part in parts if part)


def _block_start(event: dict[str, Any]) -> str:
    block = _mapping(event.get("content_block"))
    label = " ".join(str(block[key]) for key in ("name", "id") if block.get(key))
    return f"{block.get('type') or '?'} {label}".strip()


def _block_delta(event: dict[str, Any]) -> str:
    delta = _mapping(event.get("delta"))
    kind = str(delta.get("type") or "?")
    for field in ("text", "thinking", "partial_json"):
        if isinstance(delta.get(field), str):
            return f"{kind} {json.dumps(delta[field][: SUMMARY_LENGTH * 2], ensure_ascii=False)}"
    if isinstance(delta.get("signature"), str):
        return f"{kind} ({len(delta['signature']):,} characters)"
    return f"{kind} {json.dumps(delta, ensure_ascii=False, default=str)}"


def _message_delta(event: dict[str, Any]) -> str:
    delta = _mapping(event.get("delta"))
    stop = f"stop_reason: {delta['stop_reason']}" if delta.get("stop_reason") else ""
    return " · ".join(part for part in (stop, _usage_text(_mapping(event.get("usage")))) if part)


def _error(event: dict[str, Any]) -> str:
    error = _mapping(event.get("error"))
    return f"{error.get('type') or 'error'}: {error.get('message') or ''}"


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_delta": _block_delta,
    "message_delta": _message_delta,
    "error": _error,
}


def _usage_text(usage: dict[str, Any]) -> str:
    labels = {
        "input_tokens": "in",
        "output_tokens": "out",
        "cache_creation_input_tokens": "cache write",
        "cache_read_input_tokens": "cache read",
    }
    return ", ".join(f"{label} {usage[key]}" for key, label in labels.items() if isinstance(usage.get(key), int))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"
