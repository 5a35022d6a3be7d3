"""What clients get through the proxy equals what they get from Anthropic directly."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import anthropic
import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-5"
MESSAGES = [{"role": "user", "content": "Read the config file, please."}]
# Headers that legitimately differ between two exchanges (date, our id) or two hops (framing).
VOLATILE = {"date", "x-request-id", "transfer-encoding", "connection", "keep-alive"}


def scenario(name: str) -> dict[str, str]:
    return {SCENARIO_HEADER: name}


def comparable(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.multi_items() if name not in VOLATILE]


def assert_proxy_request_id(response: httpx.Response) -> None:
    uuid.UUID(response.headers["x-request-id"])


@pytest.mark.parametrize("kind", ["text", "tool_use", "thinking"])
def test_non_streaming_responses_are_identical(fake: FakeAnthropic, proxy: RunningProxy, kind: str) -> None:
    calls = []
    for base_url in (fake.url, proxy.url):
        raw = sdk(base_url).messages.with_raw_response.create(
            model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers=scenario(kind)
        )
        calls.append((raw.http_response, raw.parse()))
    (direct, direct_message), (proxied, proxied_message) = calls
    assert proxied_message == direct_message
    assert proxied.status_code == direct.status_code == 200
    assert proxied.content == direct.content
    assert comparable(proxied.headers) == comparable(direct.headers)
    assert proxied.headers["request-id"] == direct.headers["request-id"]
    assert_proxy_request_id(proxied)


@pytest.mark.parametrize("kind", ["text", "tool_use", "thinking", "unknown_event"])
def test_streams_are_identical_byte_for_byte(fake: FakeAnthropic, proxy: RunningProxy, kind: str) -> None:
    body = {"model": MODEL, "max_tokens": 256, "messages": MESSAGES, "stream": True}
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01", **scenario(kind)}
    streamed = []
    for base_url in (fake.url, proxy.url):
        with httpx.stream("POST", f"{base_url}/v1/messages?beta=true", json=body, headers=headers) as response:
            streamed.append((response, b"".join(response.iter_raw())))
    (direct, direct_bytes), (proxied, proxied_bytes) = streamed
    assert proxied_bytes == direct_bytes
    assert proxied_bytes.count(b"event: ") > 6
    assert comparable(proxied.headers) == comparable(direct.headers)
    assert proxied.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert_proxy_request_id(proxied)


@pytest.mark.parametrize("kind", ["text", "tool_use", "thinking"])
def test_the_sdk_accumulates_the_same_message_from_a_proxied_stream(
    fake: FakeAnthropic, proxy: RunningProxy, kind: str
) -> None:
    finals = []
    for base_url in (fake.url, proxy.url):
        with sdk(base_url).messages.stream(
            model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers=scenario(kind)
        ) as stream:
            finals.append(stream.get_final_message())
    assert finals[0] == finals[1]
    assert finals[1].usage.output_tokens > 3


def test_upstream_receives_the_clients_request_unchanged(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    body = (
        b'{"model":"claude-sonnet-5","max_tokens":64,  "messages":[{"role":"user","content":"h\\u00e9"}],'
        b'"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.220.7ee;"}],'
        b'"future_field":{"kept":true}}'
    )
    headers = {
        "x-api-key": DEFAULT_API_KEY,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-claude-code-session-id": "0b5c7c8e-1111-4d2b-9a55-6f2b1f3f0c01",
        "user-agent": "claude-cli/2.1.280 (external, cli)",
        "x-stainless-retry-count": "0",
        "accept": "application/json",
    }
    for base_url in (fake.url, proxy.url):
        httpx.post(f"{base_url}/v1/messages?beta=true", content=body, headers=headers).raise_for_status()
    direct, proxied = fake.requests
    assert proxied.body == direct.body == body
    assert (proxied.path, proxied.query_string) == ("/v1/messages", "beta=true")

    def end_to_end(request: object) -> list[tuple[str, str]]:
        skip = {"host", "content-length", "connection"}
        return [(name.lower(), value) for name, value in request.headers if name.lower() not in skip]  # type: ignore[attr-defined]

    assert end_to_end(proxied) == end_to_end(direct)
    assert proxied.header("content-length") == str(len(body))


def test_side_endpoints_pass_through(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    results = []
    for base_url in (fake.url, proxy.url):
        client = sdk(base_url)
        count = client.messages.count_tokens(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        models = client.models.list(limit=2)
        one = client.models.retrieve("claude-opus-5")
        results.append((count, [model.id for model in models.data], models.has_more, one))
    assert results[0] == results[1]
    assert results[1][0].input_tokens > 0


def test_batches_pass_through(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    client = sdk(proxy.url)
    batch = client.messages.batches.create(
        requests=[{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}}]  # type: ignore[list-item]
    )
    assert batch.processing_status == "in_progress"
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    assert [batch.id] == [item.id for item in client.messages.batches.list()]
    assert [result.custom_id for result in client.messages.batches.results(batch.id)] == ["a"]
    assert client.messages.batches.delete(batch.id).id == batch.id


def test_file_uploads_stream_through_unchanged(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    content = bytes(range(256)) * 4096 + b"\r\n--not-a-boundary\r\n"
    client = sdk(proxy.url)
    uploaded = client.beta.files.upload(file=("blob.bin", content, "application/octet-stream"))
    upload = fake.last_request
    assert upload.header("content-length") == str(len(upload.body))
    assert content in upload.body
    assert client.beta.files.download(uploaded.id).read() == content
    assert [item.id for item in client.beta.files.list()] == [uploaded.id]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.APIStatusError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (504, anthropic.InternalServerError),
        (529, anthropic.InternalServerError),
    ],
)
def test_upstream_errors_reach_the_client_unchanged(
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    status: int,
    error_class: type[anthropic.APIStatusError],
) -> None:
    proxy = start_proxy(UPSTREAM_MAX_RETRIES="0")  # retries are tested on their own
    caught = []
    for base_url in (fake.url, proxy.url):
        with pytest.raises(error_class) as error:
            sdk(base_url).messages.create(
                model=MODEL, max_tokens=16, messages=MESSAGES, extra_headers=scenario(f"error:{status}")
            )
        caught.append(error.value)
    direct, proxied = caught
    assert proxied.status_code == direct.status_code == status
    assert proxied.response.content == direct.response.content
    assert comparable(proxied.response.headers) == comparable(direct.response.headers)
    if status == 429:
        assert proxied.response.headers["retry-after"] == "17"


def test_a_mid_stream_error_event_is_relayed_as_is(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True}
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01", **scenario("mid_stream_error")}
    relayed = []
    for base_url in (fake.url, proxy.url):
        with httpx.stream("POST", f"{base_url}/v1/messages", json=body, headers=headers) as response:
            relayed.append(b"".join(response.iter_raw()))
    assert relayed[1] == relayed[0]
    assert b"event: error" in relayed[1]
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        sdk(proxy.url).messages.stream(
            model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario("mid_stream_error")
        ) as stream,
    ):
        stream.get_final_message()


def test_an_upstream_drop_mid_stream_reaches_the_client_as_a_drop(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True}
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01", **scenario("disconnect")}
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{proxy.url}/v1/messages", json=body, headers=headers) as response,
    ):
        for chunk in response.iter_raw():
            received += chunk
    assert received.startswith(b"event: message_start")
    assert b"message_stop" not in received
