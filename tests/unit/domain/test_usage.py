import json
from pathlib import Path

import pytest

from nexus.domain.masking import masked_headers
from nexus.domain.usage import ResponseFacts, TokenUsage, facts_from_message, facts_from_sse

SAMPLES = sorted((Path(__file__).parents[2] / "fixtures" / "stream-samples").glob("*.json"))


def sse_bytes(events: list[dict[str, object]]) -> bytes:
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode() for event in events
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name[:60])
def test_real_claude_code_streams_give_the_recorded_usage(sample: Path) -> None:
    recorded = json.loads(sample.read_text())["response"]
    metadata = recorded["metadata"]
    facts = facts_from_sse(sse_bytes(metadata["streamingChunks"]))
    assert facts.usage is not None
    assert (facts.usage.input_tokens, facts.usage.output_tokens) == (metadata["inputTokens"], metadata["outputTokens"])
    assert facts.tool_calls == metadata["toolCalls"]
    assert facts.model == recorded["body"]["model"]
    assert facts.complete


STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-5",'
    b'"content":[],"usage":{"input_tokens":4,"cache_creation_input_tokens":1830,"cache_read_input_tokens":18211,'
    b'"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":1830},"output_tokens":2}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
    b'"content_block":{"type":"tool_use","id":"t","name":"Read","input":{}}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},'
    b'"usage":{"output_tokens":40}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"input_tokens":4,"output_tokens":71}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_delta_usage_overwrites_and_never_adds() -> None:
    assert facts_from_sse(STREAM) == ResponseFacts(
        model="claude-sonnet-5",
        message_id="msg_1",
        stop_reason="tool_use",
        usage=TokenUsage(
            input_tokens=4,
            output_tokens=71,
            cache_creation_input_tokens=1830,
            cache_read_input_tokens=18211,
            cache_creation_5m_input_tokens=0,
            cache_creation_1h_input_tokens=1830,
        ),
        tool_calls=1,
        complete=True,
    )


def test_a_stream_cut_short_keeps_what_was_known() -> None:
    cut = STREAM[: STREAM.index(b"event: message_delta")] + b'event: content_block_delta\ndata: {"type":"conte'
    facts = facts_from_sse(cut)
    assert facts.usage is not None
    assert facts.usage.output_tokens == 2
    assert not facts.complete


def test_message_json() -> None:
    body = (
        b'{"id":"msg_2","type":"message","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"x"},'
        b'{"type":"tool_use","id":"t","name":"Bash","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":9,'
        b'"output_tokens":3,"cache_read_input_tokens":100}}'
    )
    facts = facts_from_message(body)
    assert facts is not None
    assert (facts.model, facts.tool_calls, facts.complete) == ("claude-haiku-4-5-20251001", 1, True)
    assert facts.usage == TokenUsage(input_tokens=9, output_tokens=3, cache_read_input_tokens=100)
    assert facts_from_message(b'{"type":"error"') is None


def test_masking_hides_every_credential_but_keeps_the_scheme() -> None:
    shown = masked_headers(
        [
            (b"authorization", b"Bearer sk-ant-oat01-secret"),
            (b"x-api-key", b"sk-ant-api03-secret"),
            (b"cookie", b"session=secret"),
            (b"anthropic-beta", b"oauth-2025-04-20"),
        ]
    )
    assert shown == [
        ("authorization", "Bearer ********"),
        ("x-api-key", "********"),
        ("cookie", "********"),
        ("anthropic-beta", "oauth-2025-04-20"),
    ]


@pytest.mark.parametrize("count", ["-1", "2147483648", "1e400", "99999999999999999999999"])
def test_a_token_count_no_api_can_mean_is_no_usage(count: str) -> None:
    body = (
        '{"id":"msg_1","type":"message","model":"claude-sonnet-5","content":[],"stop_reason":"end_turn",'
        f'"usage":{{"input_tokens":{count},"output_tokens":4}}}}'
    ).encode()
    assert facts_from_message(body) is None
    start = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"claude-sonnet-5",'
        f'"usage":{{"input_tokens":{count},"output_tokens":1}}}}}}\n\n'
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        '"usage":{"output_tokens":4}}\n\n'
    ).encode()
    assert facts_from_sse(start).usage == TokenUsage(output_tokens=4), "the bad event says nothing, the good one counts"
