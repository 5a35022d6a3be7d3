import pytest

from nexus.domain.errors import InvalidRequest
from nexus.domain.proxy_request import MessagesSummary, inspect_json_body


def test_reads_model_and_stream_only() -> None:
    body = b'{"model":"claude-sonnet-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true}'
    assert inspect_json_body("/v1/messages", body) == MessagesSummary(model="claude-sonnet-5", stream=True)


def test_stream_must_be_literally_true() -> None:
    body = b'{"model":"m","messages":[],"stream":"yes"}'
    assert not inspect_json_body("/v1/messages", body).stream


def test_count_tokens_never_streams() -> None:
    body = b'{"model":"m","messages":[],"stream":true}'
    assert not inspect_json_body("/v1/messages/count_tokens", body).stream


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "Request body is not valid JSON"),
        (b'{"model":"\xff","messages":[]}', "Request body is not valid JSON: JSON is not UTF-8"),
        (b"", "Request body is not valid JSON"),
        (b"[]", "Request body must be a JSON object"),
        (b'{"messages":[]}', "model: Field required"),
        (b'{"model":"m"}', "messages: Field required"),
        (b'{"model":7,"messages":[]}', "model: Expected `str`, got `int`"),
        (b'{"model":"m","messages":{}}', "messages: Input should be a valid list"),
    ],
)
def test_bad_bodies_are_invalid_requests(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inspect_json_body("/v1/messages", body)
    assert caught.value.message.startswith(message)
    assert caught.value.status == 400


# Valid JSON msgspec will not read: the proxy forwards it and lets upstream answer, as Anthropic
# does for Claude Code's lone surrogates ("no low surrogate in string").
@pytest.mark.parametrize(
    "content",
    [
        rb'"cut inside an emoji \ud83d"',
        rb'"a lone low \udc00 surrogate"',
        b'[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"1e400"}]}], "n": 1e400',
        b'"x", "seed": 123456789012345678901234567890123456789012345678901234567890',
    ],
)
def test_bodies_msgspec_refuses_but_json_allows_are_forwarded(content: bytes) -> None:
    body = b'{"model":"claude-sonnet-5","stream":true,"messages":[{"role":"user","content":' + content + b"}]}"
    assert inspect_json_body("/v1/messages", body) == MessagesSummary(model="claude-sonnet-5", stream=True)


def test_a_model_name_with_a_lone_surrogate_is_read_with_a_replacement_character() -> None:
    # It goes on into the journal (msgpack) and spans, neither of which takes a lone surrogate.
    summary = inspect_json_body("/v1/messages", rb'{"model":"claude-\ud83d","messages":[]}')
    assert summary.model == "claude-\ufffd"
    summary.model.encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (rb'{"model":"m","messages":[{"content":"\ud83d"}],"temperature":NaN}', "Request body is not valid JSON"),
        (rb'{"model":"m\ud83d","messages":{}}', "messages: Input should be a valid list"),
        (rb'["\ud83d"]', "Request body must be a JSON object"),
        (rb'{"messages":["\ud83d"]}', "model: Field required"),
    ],
)
def test_the_fallback_reading_still_refuses_what_is_invalid(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inspect_json_body("/v1/messages", body)
    assert caught.value.message.startswith(message)


def test_a_body_nested_past_the_decoders_is_an_invalid_request() -> None:
    # It was a RecursionError, answered 500 by the proxy (fuzzing).
    deep = b"[" * 3000 + b"]" * 3000
    body = b'{"model":"claude-sonnet-5","max_tokens":1,"messages":[{"role":"user","content":' + deep + b"}]}"
    with pytest.raises(InvalidRequest, match="nested too deeply") as refused:
        inspect_json_body("/v1/messages", body)
    assert refused.value.status == 400


def test_a_lone_surrogate_in_a_key_of_a_body_msgspec_refuses_is_read() -> None:
    # msgspec.convert encodes keys to match them to fields and raised UnicodeEncodeError: the
    # proxy answered 500 (fuzzing). The key matches no field, so it changes nothing.
    body = rb'{"model":"claude-sonnet-5","messages":[],"\ud800":1,"stream":true}'
    assert inspect_json_body("/v1/messages", body) == MessagesSummary(model="claude-sonnet-5", stream=True)
