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
