import json
from pathlib import Path
from typing import Any

import pytest

from nexus.domain.message_rebuild import rebuild_message
from nexus.domain.usage import facts_from_sse

SAMPLES = sorted((Path(__file__).parents[2] / "fixtures" / "stream-samples").glob("*.json"))


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode() for event in events
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name[:60])
def test_real_claude_code_streams_rebuild_to_the_recorded_body(sample: Path) -> None:
    recorded = json.loads(sample.read_text())["response"]
    message = rebuild_message(sse(*recorded["metadata"]["streamingChunks"]))
    assert message is not None
    body = recorded["body"]
    assert message["content"] == body["content"]
    assert [block["type"] for block in message["content"]] == ["text", "tool_use"]
    # The recorded body is the whole Message: the rebuild matches it field for field.
    assert message == body


def start(**usage: Any) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 4, "output_tokens": 2, "service_tier": "standard"},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


CITATION = {"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}

FULL = (
    start(
        input_tokens=4,
        cache_creation_input_tokens=1830,
        cache_read_input_tokens=18211,
        cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1830},
        output_tokens=2,
        service_tier="standard",
    ),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    {"type": "ping"},
    delta(0, type="thinking_delta", thinking="Read the "),
    delta(0, type="thinking_delta", thinking="config first."),
    delta(0, type="signature_delta", signature="EqQBCg=="),
    stop(0),
    block_start(1, {"type": "text", "text": ""}),
    delta(1, type="text_delta", text="I'll read"),
    delta(1, type="citations_delta", citation=CITATION),
    delta(1, type="text_delta", text=" it."),
    stop(1),
    {"type": "brand_new_event", "index": 1, "whatever": True},
    block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
    delta(2, type="input_json_delta", partial_json=""),
    delta(2, type="input_json_delta", partial_json='{"file_path": "/srv/app/con'),
    delta(2, type="input_json_delta", partial_json='fig.toml", "limit": 1'),
    delta(2, type="input_json_delta", partial_json="0}"),
    stop(2),
    block_start(3, {"type": "redacted_thinking", "data": "opaque"}),
    stop(3),
    block_start(4, {"type": "tool_use", "id": "toolu_2", "name": "Now", "input": {}}),
    delta(4, type="input_json_delta", partial_json=""),
    stop(4),
    block_start(5, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
    delta(5, type="input_json_delta", partial_json='{"query": "x"}'),
    stop(5),
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"input_tokens": 4, "output_tokens": 40, "server_tool_use": {"web_search_requests": 1}},
    },
    {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 71}},
    {"type": "message_stop"},
)


def test_every_block_kind_is_rebuilt() -> None:
    assert rebuild_message(sse(*FULL)) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5",
        "content": [
            {"type": "thinking", "thinking": "Read the config first.", "signature": "EqQBCg=="},
            {"type": "text", "text": "I'll read it.", "citations": [CITATION]},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "Read",
                "input": {"file_path": "/srv/app/config.toml", "limit": 10},
            },
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "tool_use", "id": "toolu_2", "name": "Now", "input": {}},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 4,
            "cache_creation_input_tokens": 1830,
            "cache_read_input_tokens": 18211,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1830},
            "output_tokens": 71,
            "service_tier": "standard",
            "server_tool_use": {"web_search_requests": 1},
        },
    }


def test_usage_agrees_with_the_accounting_facts() -> None:
    stream = sse(*FULL)
    message = rebuild_message(stream)
    facts = facts_from_sse(stream)
    assert message is not None
    assert facts.usage is not None
    usage = message["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["cache_read_input_tokens"]) == (
        facts.usage.input_tokens,
        facts.usage.output_tokens,
        facts.usage.cache_read_input_tokens,
    )


def test_a_stream_cut_mid_tool_input_keeps_the_raw_text() -> None:
    stream = sse(
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="text_delta", text="Reading."),
        stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
        delta(1, type="input_json_delta", partial_json='{"file_path": "/sr'),
    )
    torn = stream + b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"del'
    message = rebuild_message(torn)
    assert message is not None
    assert message["content"] == [
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"_raw": '{"file_path": "/sr'}},
    ]
    assert message["stop_reason"] is None
    assert message["usage"] == {
        "input_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
        "service_tier": "standard",
    }


def test_an_error_event_ends_the_message_where_it_was() -> None:
    error = {"type": "error", "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"}}
    message = rebuild_message(
        sse(start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text="Hal"), error)
    )
    assert message is not None
    assert message["content"] == [{"type": "text", "text": "Hal"}]
    assert message["stop_reason"] is None


def test_newer_message_fields_are_kept() -> None:
    message = rebuild_message(
        sse(
            start(),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "refusal", "stop_details": {"type": "refusal", "category": "cyber"}},
                "usage": {"output_tokens": 5},
                "context_management": {"applied_edits": []},
            },
        )
    )
    assert message is not None
    assert message["stop_reason"] == "refusal"
    assert message["stop_details"] == {"type": "refusal", "category": "cyber"}
    assert message["context_management"] == {"applied_edits": []}


def test_events_named_only_in_their_data_are_understood() -> None:
    raw = (
        b'data: {"type":"message_start","message":{"id":"m","model":"x","content":[],"usage":{"input_tokens":1}}}\r\n\n'
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}\n\n'
    )
    message = rebuild_message(raw)
    assert message is not None
    assert message["content"] == [{"type": "text", "text": "ok"}]


@pytest.mark.parametrize(
    "stream",
    [
        b"",
        b"event: ping\ndata: {}\n\n",
        b"event: message_start\ndata: {\n\n",
        b'event: message_start\ndata: {"type":"message_start","message":[]}\n\n',
        sse(block_start(0, {"type": "text", "text": ""})),
    ],
)
def test_no_message_start_no_message(stream: bytes) -> None:
    assert rebuild_message(stream) is None


def test_odd_events_are_skipped() -> None:
    stream = (
        sse(
            start(),
            block_start(0, {"type": "text", "text": ""}),
            delta(7, type="text_delta", text="orphan"),
            delta(0, type="text_delta", text=5),
            delta(0, type="mystery_delta", text="?"),
            {"type": "content_block_delta", "index": "0", "delta": {"type": "text_delta", "text": "bad index"}},
            {"type": "message_delta", "delta": {}, "usage": {"output_tokens": "many"}},
        )
        + b"event: message_delta\ndata: [1, 2]\n\n"
    )
    message = rebuild_message(stream)
    assert message is not None
    assert message["content"] == [{"type": "text", "text": ""}]
    assert message["usage"]["output_tokens"] == 2


def test_a_delta_whose_type_is_no_string_is_skipped() -> None:
    # `kind in _APPENDED` raised TypeError (unhashable list) and failed the recording (fuzzing).
    stream = sse(start(), block_start(0, {"type": "text", "text": ""}), delta(0, type=["text_delta"], text="x"),
                 delta(0, type={"a": 1}), delta(0, type="text_delta", text="ok"))  # fmt: skip
    message = rebuild_message(stream)
    assert message is not None
    assert message["content"] == [{"type": "text", "text": "ok"}]


def test_lone_surrogates_in_tool_input_and_usage_keys_are_read() -> None:
    # The joined partial_json is a str holding the lone surrogate itself, which msgspec refused
    # with UnicodeEncodeError; so did msgspec.convert for a usage key holding one (fuzzing).
    tool = {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}
    events = [start(), block_start(0, tool), delta(0, type="input_json_delta", partial_json='{"k": "\ud83d'),
              delta(0, type="input_json_delta", partial_json='"}'),
              {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9, "\ud83d": 1}}]  # fmt: skip
    message = rebuild_message(sse(*events))
    assert message is not None
    assert message["content"][0]["input"] == {"k": "\ud83d"}
    assert message["usage"]["output_tokens"] == 9
