import itertools

from nexus.domain.message_rebuild import rebuild_message
from nexus.domain.sse import sse_events
from nexus.domain.usage import facts_from_sse

STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"claude-sonnet-5","content":[],"stop_reason":null,"usage":{"input_tokens":7,"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_events_carry_their_name_data_and_place_in_the_stream() -> None:
    events = list(sse_events(STREAM))
    assert [event.name for event in events] == [
        b"message_start",
        b"content_block_start",
        b"ping",
        b"content_block_delta",
        b"content_block_stop",
        b"message_delta",
        b"message_stop",
    ]
    assert events[0].start == 0
    assert all(a.end == b.start for a, b in itertools.pairwise(events)), "contiguous"
    assert events[-1].end == len(STREAM)
    assert events[2].data == b'{"type": "ping"}'


def test_a_crlf_stream_reads_exactly_as_the_lf_one() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert [(e.name, e.data) for e in sse_events(crlf)] == [(e.name, e.data) for e in sse_events(STREAM)]
    assert facts_from_sse(crlf) == facts_from_sse(STREAM)
    assert rebuild_message(crlf) == rebuild_message(STREAM)
    facts = facts_from_sse(crlf)
    assert (facts.model, facts.stop_reason, facts.complete) == ("claude-sonnet-5", "end_turn", True)


def test_a_torn_last_event_is_yielded_and_blank_stretches_are_not_events() -> None:
    torn = b'\n\nevent: ping\ndata: {}\n\n\n\nevent: message_delta\ndata: {"ty'
    events = list(sse_events(torn))
    assert [(e.name, e.data) for e in events] == [(b"ping", b"{}"), (b"message_delta", b'{"ty')]
    assert events[-1].end == len(torn)


def test_multi_line_data_is_joined_with_line_feeds() -> None:
    (event,) = sse_events(b"event: x\ndata: one\ndata:two\r\n\r\n")
    assert event.data == b"one\ntwo"
