"""What the proxy answers itself, and how it treats time and disconnects."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

import anthropic
import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

MESSAGES_BODY = {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
API_HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["x-request-id"]
    uuid.UUID(response.headers["x-request-id"])
    return str(body["error"]["message"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "Request body is not valid JSON"),
        (b'{"max_tokens":5,"messages":[]}', "model: Field required"),
        (b'{"model":"claude-sonnet-5","max_tokens":5}', "messages: Field required"),
        (b'"just a string"', "Request body must be a JSON object"),
    ],
)
def test_bad_messages_bodies_get_400_without_reaching_upstream(
    fake: FakeAnthropic, proxy: RunningProxy, content: bytes, message: str
) -> None:
    response = httpx.post(f"{proxy.url}/v1/messages", content=content, headers=API_HEADERS)
    assert assert_anthropic_error(response, 400, "invalid_request_error").startswith(message)
    assert fake.requests == []


def test_the_sdk_sees_proxy_errors_as_api_errors(proxy: RunningProxy) -> None:
    with pytest.raises(anthropic.BadRequestError, match="messages: Field required"):
        sdk(proxy.url).post("/v1/messages", body={"model": "claude-sonnet-5"}, cast_to=object)


def test_an_oversized_body_gets_413_declared_or_not(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(MAX_REQUEST_SIZE="1000")
    big = b'{"model":"m","messages":[],"pad":"' + b"x" * 2000 + b'"}'
    declared = httpx.post(f"{proxy.url}/v1/messages", content=big, headers=API_HEADERS)
    assert_anthropic_error(declared, 413, "request_too_large")

    def chunks() -> object:
        yield big[:600]
        yield big[600:]

    streamed = httpx.post(f"{proxy.url}/v1/messages", content=chunks(), headers=API_HEADERS)  # type: ignore[arg-type]
    assert_anthropic_error(streamed, 413, "request_too_large")
    fine = httpx.post(f"{proxy.url}/v1/messages", json=MESSAGES_BODY, headers=API_HEADERS)
    assert fine.status_code == 200
    assert len(fake.requests) == 1


def test_no_credential_anywhere_is_401(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    response = httpx.post(f"{proxy.url}/v1/messages", json=MESSAGES_BODY, headers={"anthropic-version": "2023-06-01"})
    assert "No credential for 127.0.0.1" in assert_anthropic_error(response, 401, "authentication_error")
    assert fake.requests == []


def test_an_unreachable_upstream_is_502(start_proxy: Callable[..., RunningProxy]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    proxy = start_proxy(CLAUDE_API_BASE_URL=f"http://127.0.0.1:{port}", UPSTREAM_MAX_RETRIES="0")
    response = httpx.post(f"{proxy.url}/v1/messages", json=MESSAGES_BODY, headers=API_HEADERS)
    assert "unreachable" in assert_anthropic_error(response, 502, "api_error")
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk(proxy.url).messages.create(**MESSAGES_BODY)  # type: ignore[call-overload]
    assert caught.value.status_code == 502


def test_an_upstream_that_never_answers_is_504(fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        proxy = start_proxy(
            CLAUDE_API_BASE_URL=f"http://127.0.0.1:{listener.getsockname()[1]}", CLAUDE_API_TIMEOUT="300"
        )
        response = httpx.post(f"{proxy.url}/v1/messages", json=MESSAGES_BODY, headers=API_HEADERS)
        assert_anthropic_error(response, 504, "timeout_error")
    finally:
        listener.close()


def test_a_stream_that_goes_silent_past_the_timeout_is_cut(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(CLAUDE_API_TIMEOUT="300")
    # Upstream sends its headers, then nothing for 3 s: without the timeout this would succeed.
    headers = {**API_HEADERS, SCENARIO_HEADER: "stall:3000"}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{proxy.url}/v1/messages", json={**MESSAGES_BODY, "stream": True}, headers=headers) as r,
    ):
        assert r.status_code == 200
        r.read()


def test_stream_chunks_are_flushed_as_they_arrive(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    """Upstream sends an event every 150 ms; the first must reach the client long before the last is sent."""
    headers = {**API_HEADERS, SCENARIO_HEADER: "slow:150"}
    arrivals: list[float] = []
    started = time.monotonic()
    with httpx.stream(
        "POST", f"{proxy.url}/v1/messages", json={**MESSAGES_BODY, "stream": True}, headers=headers
    ) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 8, "each event arrives as its own chunk"
    assert arrivals[0] < arrivals[-1] / 2


def test_a_client_that_leaves_cancels_the_upstream_stream(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    headers = {**API_HEADERS, SCENARIO_HEADER: "slow:200"}
    with httpx.stream(
        "POST", f"{proxy.url}/v1/messages", json={**MESSAGES_BODY, "stream": True}, headers=headers
    ) as response:
        next(response.iter_raw())
    # Leaving the block closed the connection mid-stream.
    fake.wait_for(lambda: len(fake.cancelled_streams) == 1, timeout=3)
    assert len(fake.cancelled_streams) == 1


def test_a_client_that_leaves_before_the_answer_cancels_the_upstream_request(
    fake: FakeAnthropic, proxy: RunningProxy
) -> None:
    headers = {**API_HEADERS, SCENARIO_HEADER: "slow:300"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy.url}/v1/messages", json={**MESSAGES_BODY, "stream": True}, headers=headers, timeout=0.15)
    fake.wait_for(lambda: len(fake.cancelled_streams) == 1, timeout=3)
    assert len(fake.cancelled_streams) == 1


def test_claude_codes_side_calls_are_answered_locally(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    with httpx.Client(base_url=proxy.url) as client:
        assert client.head("/").status_code == 200
        assert client.head("/api/hello").status_code == 200
        hello = client.get("/api/hello")
        assert (hello.status_code, hello.json()) == (200, {"status": "ok"})
        for path in ("/api/event_logging/batch", "/api/event_logging/v2/batch"):
            logged = client.post(path, json={"events": [{"name": "tengu_startup"}]})
            assert (logged.status_code, logged.json()) == (200, {"status": "ok"})
            uuid.UUID(logged.headers["x-request-id"])
        root = client.get("/").json()
        assert root["service"] == "claude-nexus"
        assert (root["endpoints"]["management_api_docs"], root["endpoints"]["dashboard"]) == ("/docs", "/dashboard")
        assert_anthropic_error(client.get("/api/unknown"), 404, "not_found_error")
        assert_anthropic_error(client.post("/api/other", json={}), 404, "not_found_error")
    assert fake.requests == []


@pytest.mark.parametrize("host", ["../outside", "evil/../../etc", "a b", "x:notaport", ""])
def test_malformed_hosts_get_400(fake: FakeAnthropic, proxy: RunningProxy, host: str) -> None:
    response = httpx.post(f"{proxy.url}/v1/messages", json=MESSAGES_BODY, headers={**API_HEADERS, "host": host})
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert fake.requests == []
