"""The frames between the proxy and its recorder process (ADR 20)."""

from __future__ import annotations

import asyncio

import msgspec

from nexus.adapters.persistence.journal import encode_record
from nexus.adapters.pipe_frames import frame, read_frame
from nexus.adapters.recorder_process.protocol import (
    EXCHANGE,
    Counts,
    LogLine,
    counts_frame,
    exchange_frame,
    log_frame,
    read_counts,
    read_exchange,
    read_log,
    read_settled,
    settled_frame,
)
from nexus.application.exchange import Exchange


def exchange() -> Exchange:
    return Exchange(
        request_id="0b0e4c53-2d7e-4f8e-9b38-3f1b7f0c2a11",
        method="POST",
        path="/v1/messages",
        query_string=b"beta=true",
        domain="team.example",
        request_headers=[(b"x-api-key", b"sk-ant-api03-secret"), (b"content-type", b"application/json")],
        request_body=b'{"model":"claude-sonnet-5","messages":[]}',
        status=200,
        response_chunks=[b"event: message_start\n", b"data: {}\n\n"],
        started_at_ms=1_765_000_000_000,
        duration_s=0.25,
    )


async def test_an_exchange_crosses_as_its_write_ahead_record_with_what_changed_after() -> None:
    written = exchange()
    record = encode_record(written)  # what the write-ahead log holds
    finished = msgspec.structs.replace(written, status=499, outcome="client_cancelled", error="gone", duration_s=1.5)
    reader = asyncio.StreamReader()
    reader.feed_data(exchange_frame(41, finished, record))
    payload = await read_frame(reader)
    assert payload is not None
    assert payload[:1] == EXCHANGE
    sequence, received = read_exchange(payload[1:])
    assert sequence == 41
    assert (received.status, received.outcome, received.error, received.duration_s) == (
        499,
        "client_cancelled",
        "gone",
        1.5,
    )
    assert received.request_body == written.request_body
    assert received.response_chunks == written.response_chunks
    assert (b"x-api-key", b"sk-ant-api03-secret") not in received.request_headers, "masked, as on disk"


def test_acknowledgements_counts_and_log_lines_round_trip() -> None:
    assert read_settled(settled_frame([1, 2, 2**40])[1:]) == [1, 2, 2**40]
    assert read_settled(settled_frame([])[1:]) == []
    assert read_counts(counts_frame(Counts(7, 2, 1))[1:]) == Counts(7, 2, 1)
    line = LogLine(name="nexus.sql", level=30, message="Slow SQL", created=1.5, extra={"rows": 3, "odd": object()})
    received = read_log(log_frame(line)[1:])
    assert (received.name, received.level, received.message, received.extra["rows"]) == ("nexus.sql", 30, "Slow SQL", 3)
    assert isinstance(received.extra["odd"], str), "a value msgpack cannot carry goes as its str"


async def test_frames_are_read_back_one_by_one_and_a_cut_one_ends_the_pipe() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(b"one") + frame(b"") + frame(b"three")[:5])
    reader.feed_eof()
    assert await read_frame(reader) == b"one"
    assert await read_frame(reader) == b""
    assert await read_frame(reader) is None
    oversized = asyncio.StreamReader()
    oversized.feed_data(frame(b"x" * 10))
    assert await read_frame(oversized, max_size=5) is None
