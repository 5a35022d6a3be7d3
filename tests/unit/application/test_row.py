import hashlib
import json
import zlib

from nexus.application.exchange import Exchange
from nexus.application.recording.row import build_row, measure
from nexus.domain.body_codec import compose

FIRST = {"role": "user", "content": "x" * 2000}


def messages_exchange(messages: list[dict[str, str]]) -> Exchange:
    body = json.dumps({"model": "claude-sonnet-5", "max_tokens": 8, "messages": messages}).encode()
    return Exchange(
        request_id="00000000-0000-4000-8000-000000000001",
        method="POST",
        path="/v1/messages",
        query_string=b"",
        domain="d",
        request_headers=[(b"x-api-key", b"sk-secret")],
        request_body=body,
        started_at_ms=1_800_000_000_000,
        status=200,
    )


def test_parts_already_stored_are_referenced_not_carried_again() -> None:
    first_digest = hashlib.sha256(json.dumps(FIRST).encode()).digest()
    exchange = messages_exchange([FIRST, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "y"}])
    fresh = build_row(exchange, store_bodies=True)
    again = build_row(exchange, store_bodies=True, known_parts={first_digest})
    assert first_digest in {part.digest for part in fresh.parts}
    assert first_digest not in {part.digest for part in again.parts}
    assert len(again.parts) == len(fresh.parts) - 1
    assert again.request_body == fresh.request_body, "the skeleton still references it"
    stored = {part.digest.hex(): zlib.decompress(part.data) for part in fresh.parts}
    assert exchange.request_body is not None
    assert compose(again.request_body or b"", stored) == exchange.request_body


def test_credentials_never_reach_a_row() -> None:
    row = build_row(messages_exchange([FIRST]), store_bodies=True)
    assert ["x-api-key", "********"] in row.request_headers


def answered(exchange: Exchange, output_tokens: int) -> Exchange:
    reply = {"type": "message", "model": "claude-sonnet-5", "content": [], "stop_reason": "end_turn",
             "usage": {"input_tokens": 3, "output_tokens": output_tokens}}  # fmt: skip
    exchange.response_chunks = [json.dumps(reply).encode()]
    exchange.response_headers = [(b"content-type", b"application/json")]
    return exchange


def test_each_exchange_is_measured_as_itself_however_observers_interleave() -> None:
    first = answered(messages_exchange([FIRST]), 7)
    second = answered(messages_exchange([FIRST]), 11)  # equal but for its usage: not the same one

    seen = [measure(first), measure(first), measure(second), measure(first)]

    assert [m.facts.usage.output_tokens if m.facts else None for m in seen] == [7, 7, 11, 7]
    assert build_row(second, store_bodies=False).output_tokens == 11
    assert build_row(first, store_bodies=False).output_tokens == 7
