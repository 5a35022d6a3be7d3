"""Properties of the SSE reader, the message rebuild and the usage facts of a stream.

A streamed message reaches the recorder split in ways nobody controls: upstream cuts the text
into deltas where it likes, a proxy on the way may turn LF into CRLF, pings come in between,
the connection may drop anywhere. Whatever the split, the rebuild must be the same message,
and no bytes at all may make it raise.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nexus.domain.message_rebuild import rebuild_message
from nexus.domain.sse import sse_events
from nexus.domain.usage import ResponseFacts, TokenUsage, facts_from_sse
from tests.support.fuzzing import fuzz_settings
from tests.support.json_strategies import JSON, RICH_TEXT, dumps

EVENT_NAMES = st.sampled_from(
    ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
     "message_stop", "ping", "error", "", "unknown_event"]
)  # fmt: skip
# A count, or what a broken upstream may put where one should be: negative, past 32 bits, text.
COUNT = st.one_of(st.integers(0, 2**31 - 1), st.integers(), st.floats(), st.text(max_size=3), JSON)
INDEX = st.one_of(st.integers(0, 4), JSON)


def event(name: str, data: bytes, *, crlf: bool = False, space: bool = True) -> bytes:
    newline = b"\r\n" if crlf else b"\n"
    head = f"event: {name}".encode() + newline if name else b""
    return head + b"data:" + (b" " if space else b"") + data + newline + newline


# Events that look like Anthropic's, fields of any type and shape: what a broken or hostile
# upstream (or a recording damaged on disk) could hand the recorder.
LOOKALIKE_DATA = st.fixed_dictionaries(
    {"type": st.one_of(EVENT_NAMES, JSON)},
    optional={
        "index": INDEX,
        "message": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "id": JSON, "model": JSON, "role": JSON, "content": st.lists(JSON, max_size=3),
                    "usage": st.one_of(JSON, st.dictionaries(st.sampled_from(["input_tokens", "output_tokens",
                                       "cache_creation", "service_tier"]), COUNT)),
                },
            ),
        ),
        "content_block": st.one_of(JSON, st.fixed_dictionaries({"type": JSON}, optional={"text": JSON, "input": JSON})),
        "delta": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"type": st.one_of(st.sampled_from(["text_delta", "thinking_delta", "input_json_delta",
                                                    "signature_delta", "citations_delta"]), JSON)},
                optional={"text": JSON, "thinking": JSON, "partial_json": JSON, "signature": JSON, "citation": JSON,
                          "stop_reason": JSON},
            ),
        ),
        "usage": st.one_of(JSON, st.dictionaries(st.sampled_from(["input_tokens", "output_tokens"]), COUNT)),
        "context_management": JSON,
    },
)  # fmt: skip
LOOKALIKE_EVENT = st.builds(
    lambda name, data, crlf: event(name, dumps(data), crlf=crlf), EVENT_NAMES, LOOKALIKE_DATA, st.booleans()
)
GARBAGE = st.one_of(
    st.binary(max_size=60), st.sampled_from([b"\n\n", b"\r\n\r\n", b": comment\n\n", b"data: {", b"event:"])
)
LOOKALIKE_STREAM = st.lists(st.one_of(LOOKALIKE_EVENT, GARBAGE), max_size=12).map(b"".join)
# A valid start with blocks open at indexes 0 to 2, so that what follows reaches the handlers of
# deltas and stops instead of being dropped for want of a message or a block.
PRIMER = (
    event("message_start", b'{"type":"message_start","message":{"id":"msg_1","model":"m","content":[],"usage":{}}}')
    + b"".join(
        event("content_block_start", dumps({"type": "content_block_start", "index": i, "content_block": block}))
        for i, block in enumerate([{"type": "text", "text": ""}, {"type": "thinking", "thinking": ""},
                                   {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}])
    )
)  # fmt: skip
HANDLED_NAMES = st.sampled_from(["content_block_delta", "content_block_delta", "message_delta", "content_block_start"])
PRIMED_STREAM = st.lists(
    st.builds(lambda name, data: event(name, dumps(data)), HANDLED_NAMES, LOOKALIKE_DATA), min_size=1, max_size=6
).map(lambda events: PRIMER + b"".join(events))


@fuzz_settings(200)
@given(st.one_of(st.binary(max_size=500), LOOKALIKE_STREAM))
def test_the_events_of_any_bytes_tile_the_stream_in_order(stream: bytes) -> None:
    events = list(sse_events(stream))
    position = 0
    for item in events:
        assert position <= item.start < item.end <= len(stream)
        assert stream[item.start : item.end].strip(), "a blank stretch is no event"
        assert not stream[position : item.start].strip(), "only blank stretches between events"
        position = item.end
    assert not stream[position:].strip()


@fuzz_settings(250)
@given(st.one_of(st.binary(max_size=500), LOOKALIKE_STREAM, PRIMED_STREAM))
def test_no_stream_makes_the_rebuild_or_the_facts_raise(stream: bytes) -> None:
    message = rebuild_message(stream)
    assert message is None or (message["type"] == "message" and isinstance(message["content"], list))
    facts = facts_from_sse(stream)
    assert isinstance(facts, ResponseFacts)
    json.dumps(message)  # what the recorder stores: JSON it can write (a Decimal would not be)


# --- a valid message, streamed in any split ------------------------------------------------------

TEXT_BLOCK = st.fixed_dictionaries({"type": st.just("text"), "text": RICH_TEXT})
THINKING_BLOCK = st.fixed_dictionaries(
    {"type": st.just("thinking"), "thinking": RICH_TEXT, "signature": st.text("abcdef0123456789", max_size=12)}
)
TOOL_BLOCK = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": st.text("abcdef0123456789", min_size=1, max_size=8).map("toolu_".__add__),
        "name": st.sampled_from(["Bash", "Read", "Agent"]),
        "input": st.dictionaries(RICH_TEXT, JSON, max_size=4),
    }
)
MESSAGE = st.fixed_dictionaries(
    {
        "id": st.text("abcdef0123456789", min_size=1, max_size=8).map("msg_".__add__),
        "model": st.sampled_from(["claude-sonnet-5", "claude-haiku-4-5"]),
        "content": st.lists(st.one_of(TEXT_BLOCK, THINKING_BLOCK, TOOL_BLOCK), max_size=4),
        "stop_reason": st.sampled_from(["end_turn", "tool_use", "max_tokens"]),
        "input_tokens": st.integers(0, 2**31 - 1),
        "output_tokens": st.integers(0, 2**31 - 1),
    }
)


def pieces(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at any points, empty pieces included, as upstream's deltas may be."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def streamed(draw: st.DrawFn, message: dict[str, Any]) -> bytes:
    """``message`` as an SSE stream, split, spelled and interleaved in one of the ways possible."""
    crlf = draw(st.booleans())
    ascii_only = draw(st.booleans())

    def emit(name: str, data: dict[str, Any]) -> bytes:
        chunk = event(name, dumps(data, ascii_only=ascii_only), crlf=crlf, space=draw(st.booleans()))
        if draw(st.integers(0, 5)) == 0:
            chunk += event("ping", b'{"type":"ping"}', crlf=crlf)
        return chunk

    start = {"id": message["id"], "type": "message", "role": "assistant", "model": message["model"], "content": [],
             "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": message["input_tokens"], "output_tokens": 1}}  # fmt: skip
    out = [emit("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        opening: dict[str, Any]
        if kind == "text":
            opening, field, delta = {"type": "text", "text": ""}, "text", "text_delta"
            body = block["text"]
        elif kind == "thinking":
            opening, field, delta = {"type": "thinking", "thinking": "", "signature": ""}, "thinking", "thinking_delta"
            body = block["thinking"]
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            field, delta = "partial_json", "input_json_delta"
            body = json.dumps(block["input"], ensure_ascii=draw(st.booleans()))
            if not block["input"] and draw(st.booleans()):
                body = ""  # a tool called without arguments streams empty fragments only
        out.append(
            emit("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        for piece in pieces(draw, body):
            data = {"type": "content_block_delta", "index": index, "delta": {"type": delta, field: piece}}
            out.append(emit("content_block_delta", data))
        if kind == "thinking":
            signature = {"type": "signature_delta", "signature": block["signature"]}
            out.append(emit("content_block_delta", {"type": "content_block_delta", "index": index, "delta": signature}))
        out.append(emit("content_block_stop", {"type": "content_block_stop", "index": index}))
    final = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": message["output_tokens"]}
    out.append(emit("message_delta", {"type": "message_delta", "delta": final, "usage": usage}))
    out.append(emit("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def expected(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message["id"],
        "type": "message",
        "role": "assistant",
        "model": message["model"],
        "content": message["content"],
        "stop_reason": message["stop_reason"],
        "stop_sequence": None,
        "usage": {
            "input_tokens": message["input_tokens"],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": message["output_tokens"],
        },
    }


def as_stored(message: dict[str, Any] | None) -> Any:
    """``message`` as the recorder stores it and reads it back: JSON.

    The comparison is of what is stored, not of Python strings: a high and a low surrogate
    that meet (generated side by side, or in two deltas) are one character in JSON.
    """
    return json.loads(dumps(message))


@fuzz_settings(200)
@given(MESSAGE, st.data())
def test_a_message_streamed_in_any_split_rebuilds_to_itself(message: dict[str, Any], data: st.DataObject) -> None:
    stream = data.draw(streamed(message))
    assert as_stored(rebuild_message(stream)) == as_stored(expected(message))
    # Bytes arrive in chunks too; the recorder joins them before reading, which is the identity.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    rebuilt = rebuild_message(b"".join(stream[a:b] for a, b in itertools.pairwise(bounds)))
    assert as_stored(rebuilt) == as_stored(expected(message))


@fuzz_settings(200)
@given(MESSAGE, st.data())
def test_the_facts_of_a_stream_do_not_depend_on_its_split(message: dict[str, Any], data: st.DataObject) -> None:
    facts = facts_from_sse(data.draw(streamed(message)))
    assert facts == ResponseFacts(
        model=message["model"],
        message_id=message["id"],
        stop_reason=message["stop_reason"],
        usage=TokenUsage(input_tokens=message["input_tokens"], output_tokens=message["output_tokens"]),
        tool_calls=sum(block["type"] == "tool_use" for block in message["content"]),
        complete=True,
    )


@fuzz_settings(200)
@given(MESSAGE, st.data())
def test_a_stream_cut_anywhere_rebuilds_to_what_had_arrived(message: dict[str, Any], data: st.DataObject) -> None:
    stream = data.draw(streamed(message))
    cut = data.draw(st.integers(0, len(stream)))
    partial = rebuild_message(stream[:cut])
    facts = facts_from_sse(stream[:cut])
    # Complete once the message_stop event has arrived (its name is enough: all else came before).
    stop = next(item for item in sse_events(stream) if item.name == b"message_stop")
    if cut >= stop.end:
        assert facts.complete
    if cut < stop.start + len(b"event: message_stop"):
        assert not facts.complete
    if partial is None:
        return
    whole = expected(message)
    assert partial["id"] == whole["id"]
    assert len(partial["content"]) <= len(whole["content"])
    for got, full in zip(partial["content"], whole["content"], strict=False):
        assert got["type"] == full["type"]
        for field in ("text", "thinking"):
            if field in full:
                assert full[field].startswith(got[field])
