"""Tests of the fake Anthropic upstream itself: the official SDK against it, raw httpx for bytes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, TextBlockParam

from tests.support.fake_anthropic import (
    AGENT_PROMPTS,
    API_VERSION,
    DEFAULT_API_KEY,
    DEFAULT_OAUTH_CLIENT_ID,
    OAUTH_BETA,
    ORGANIZATION_ID,
    SCENARIO_HEADER,
    SUMMARY_TEXT,
    FakeAnthropic,
)

MODEL = "claude-sonnet-5"
MESSAGES: list[MessageParam] = [{"role": "user", "content": "Please summarise the quarterly report for me"}]
OAUTH_TOKEN = "sk-ant-oat01-test-access-token"
REFRESH_TOKEN = "sk-ant-ort01-test-refresh-token"
PING = b'event: ping\ndata: {"type": "ping"}\n\n'


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(oauth_tokens={OAUTH_TOKEN: float("inf")}, refresh_tokens={REFRESH_TOKEN: OAUTH_TOKEN}) as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.url, api_key=DEFAULT_API_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(fake: FakeAnthropic) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as raw:
        yield raw


def scenario(name: str) -> dict[str, str]:
    return {SCENARIO_HEADER: name}


def api_headers(**extra: str) -> dict[str, str]:
    """Headers of a well-formed API-key request, plus `extra` (underscores become dashes)."""
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": API_VERSION, "content-type": "application/json"}
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


def body(**overrides: Any) -> bytes:
    return json.dumps({"model": MODEL, "max_tokens": 64, "messages": MESSAGES, **overrides}).encode()


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split a raw stream into (event, data) pairs, asserting the exact framing on the way."""
    assert raw.endswith(b"\n\n")
    events = []
    for frame in raw[:-2].split(b"\n\n"):
        event_line, data_line = frame.split(b"\n")  # exactly two lines per event
        assert event_line.startswith(b"event: ")
        assert data_line.startswith(b"data: ")
        name, data = event_line.removeprefix(b"event: ").decode(), json.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == name
        events.append((name, data))
    return events


def stream_raw(http: httpx.Client, name: str = "text") -> tuple[httpx.Response, bytes]:
    response = http.post("/v1/messages", content=body(stream=True), headers=api_headers(**{SCENARIO_HEADER: name}))
    return response, response.content


def deltas(events: list[tuple[str, dict[str, Any]]], index: int) -> list[dict[str, Any]]:
    return [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == index]


# -- lifecycle ----------------------------------------------------------------------------------------


def test_starts_and_stops_quickly_and_leaves_no_thread() -> None:
    threads_before = set(threading.enumerate())
    began = time.monotonic()
    with FakeAnthropic() as fake:
        started = time.monotonic()
        assert fake.url == f"http://127.0.0.1:{fake.port}"
        httpx.get(fake.url + "/v1/models", headers=api_headers()).raise_for_status()
        stopping = time.monotonic()
    assert started - began < 0.5
    assert time.monotonic() - stopping < 0.5
    assert set(threading.enumerate()) == threads_before


def test_stop_cuts_a_stream_that_is_still_running() -> None:
    fake = FakeAnthropic().start()
    with httpx.Client(base_url=fake.url) as http:
        request = http.build_request(
            "POST", "/v1/messages", content=body(stream=True), headers=api_headers(**scenario("stall:5000"))
        )
        response = http.send(request, stream=True)
        stopping = time.monotonic()
        fake.stop()
        assert time.monotonic() - stopping < 0.5
        response.close()


# -- messages, non-streaming --------------------------------------------------------------------------


def test_create_returns_a_complete_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert message.id.startswith("msg_01")
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert message.content[0].type == "text"
    assert message.content[0].text == "You said: Please summarise the quarterly report for me"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert usage.input_tokens > 0
    assert usage.output_tokens > 3
    assert usage.cache_creation is not None
    assert usage.service_tier == "standard"


def test_cache_control_fills_the_cache_counters_in_the_requested_bucket(client: anthropic.Anthropic) -> None:
    system: list[TextBlockParam] = [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    usage = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, system=system).usage

    assert usage.cache_read_input_tokens
    assert usage.cache_creation is not None
    assert usage.cache_creation_input_tokens
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_pre_4_6_alias_resolves_to_the_dated_model(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=MESSAGES)
    assert message.model == "claude-haiku-4-5-20251001"


def test_json_response_headers_look_like_the_api(http: httpx.Client) -> None:
    response = http.post("/v1/messages", content=body(), headers=api_headers())

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_011C")
    assert response.headers["anthropic-organization-id"] == ORGANIZATION_ID
    assert response.headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert "anthropic-ratelimit-unified-status" not in response.headers


def test_beta_query_is_served_and_recorded(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    # Claude Code posts to /v1/messages?beta=true; SDK 2.x's beta namespace no longer adds the query.
    client.messages.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,
        extra_query={"beta": "true"},
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )

    assert (fake.last_request.path, fake.last_request.query_string) == ("/v1/messages", "beta=true")
    assert fake.last_request.betas == ["context-1m-2025-08-07"]


# -- messages, streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "agents", "summary", "unknown_event"])
def test_stream_accumulates_to_the_non_streaming_message(client: anthropic.Anthropic, name: str) -> None:
    created = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario(name))
    with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario(name)) as stream:
        events = list(stream)
        streamed = stream.get_final_message()

    assert streamed.model_dump() == created.model_dump()
    start = next(event for event in events if event.type == "message_start")
    delta = next(event for event in events if event.type == "message_delta")
    assert 1 <= start.message.usage.output_tokens <= 3
    # Cumulative, not incremental: the final count is message_delta's, never start + delta.
    assert streamed.usage.output_tokens == delta.usage.output_tokens


def test_stream_framing_is_exact(http: httpx.Client) -> None:
    response, raw = stream_raw(http)

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["request-id"].startswith("req_011C")
    assert b"[DONE]" not in raw
    assert raw.count(PING) == 1
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert len(deltas(events, 0)) >= 3
    start_usage = events[0][1]["message"]["usage"]
    final_usage = events[-2][1]["usage"]
    assert final_usage["input_tokens"] == start_usage["input_tokens"]
    assert final_usage["cache_read_input_tokens"] == start_usage["cache_read_input_tokens"]
    assert final_usage["output_tokens"] > start_usage["output_tokens"]


def test_every_event_is_flushed_on_its_own(fake: FakeAnthropic) -> None:
    arrivals = []
    with (
        httpx.Client(base_url=fake.url) as http,
        http.stream(
            "POST", "/v1/messages", content=body(stream=True), headers=api_headers(**scenario("slow:30"))
        ) as response,
    ):
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic(), chunk))
    first, last = arrivals[0][0], arrivals[-1][0]

    # One network read per event when nothing is buffered; allow a few to merge on a busy machine.
    assert len(arrivals) > len(parse_sse(b"".join(chunk for _, chunk in arrivals))) // 2
    assert last - first > 0.15  # the events trickled in rather than arriving together


def test_tool_use_stream_splits_the_input_json_mid_token(http: httpx.Client) -> None:
    _, raw = stream_raw(http, "tool_use")
    events = parse_sse(raw)
    fragments = [delta["partial_json"] for delta in deltas(events, 1)]

    assert fragments[0] == ""
    assert json.loads("".join(fragments)) == {"file_path": "/srv/app/config.toml"}
    assert any(not _parses(fragment) for fragment in fragments[1:])
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_agents_launch_two_sub_agents_with_fixed_prompts(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario("agents"))

    calls = [block for block in message.content if block.type == "tool_use"]
    assert [(call.name, call.input["prompt"]) for call in calls] == [("Agent", p) for p in AGENT_PROMPTS]  # type: ignore[index]
    assert calls[0].id != calls[1].id
    assert message.stop_reason == "tool_use"


def test_summary_answers_with_analysis_and_summary_sections(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario("summary"))

    assert [block.text for block in message.content if block.type == "text"] == [SUMMARY_TEXT]
    assert SUMMARY_TEXT.startswith("<analysis>")
    assert "<summary>" in SUMMARY_TEXT


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def test_thinking_stream_ends_its_block_with_one_signature(http: httpx.Client) -> None:
    _, raw = stream_raw(http, "thinking")
    events = parse_sse(raw)
    kinds = [delta["type"] for delta in deltas(events, 0)]
    stop_position = names_index(events, "content_block_stop")

    assert kinds.count("signature_delta") == 1
    assert kinds[-1] == "signature_delta"
    assert len(kinds) > 1
    assert set(kinds[:-1]) == {"thinking_delta"}
    assert events[stop_position - 1][1]["delta"]["type"] == "signature_delta"
    assert events[names_index(events, "content_block_start", after=stop_position)][1]["index"] == 1


def names_index(events: list[tuple[str, dict[str, Any]]], name: str, after: int = -1) -> int:
    return next(position for position, (event, _) in enumerate(events) if event == name and position > after)


def test_unknown_event_is_on_the_wire(http: httpx.Client) -> None:
    _, raw = stream_raw(http, "unknown_event")
    names = [name for name, _ in parse_sse(raw)]

    assert "future_event" in names
    assert names[-1] == "message_stop"


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "exception"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.ContentTooLargeError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (504, "timeout_error", anthropic.GatewayTimeoutError),
        (529, "overloaded_error", anthropic.OverloadedError),
    ],
)
def test_error_scenarios_raise_the_matching_sdk_exception(
    client: anthropic.Anthropic, status: int, error_type: str, exception: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(exception) as raised:
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, extra_headers=scenario(f"error:{status}"))

    error = raised.value
    assert error.status_code == status
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == error_type
    assert error.body["request_id"] == error.response.headers["request-id"]


def test_error_body_has_the_exact_shape(http: httpx.Client) -> None:
    response = http.post("/v1/messages", content=body(), headers=api_headers(**scenario("error:529")))
    request_id = response.headers["request-id"]

    assert response.status_code == 529
    assert response.headers["content-type"] == "application/json"
    assert response.content == (
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},'
        b'"request_id":"' + request_id.encode() + b'"}'
    )


def test_rate_limit_error_carries_retry_signals(http: httpx.Client) -> None:
    response = http.post("/v1/messages", content=body(), headers=api_headers(**scenario("error:429")))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_mid_stream_error_raises_in_the_sdk(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        client.messages.stream(
            model=MODEL, max_tokens=8, messages=MESSAGES, extra_headers=scenario("mid_stream_error")
        ) as stream,
    ):
        stream.until_done()


def test_mid_stream_error_ends_the_stream_without_message_stop(http: httpx.Client) -> None:
    response, raw = stream_raw(http, "mid_stream_error")
    events = parse_sse(raw)
    request_id = response.headers["request-id"]

    assert response.status_code == 200
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "error",
    ]
    assert raw.endswith(
        b'event: error\ndata: {"type":"error","error":{"details":null,"type":"overloaded_error",'
        b'"message":"Overloaded"},"request_id":"' + request_id.encode() + b'"}\n\n'
    )


def test_disconnect_tears_the_stream_and_the_sdk_raises(client: anthropic.Anthropic) -> None:
    # The SDK lets its HTTP library's protocol error through (httpx2.RemoteProtocolError).
    with (
        pytest.raises(Exception, match="incomplete chunked read"),
        client.messages.stream(
            model=MODEL, max_tokens=8, messages=MESSAGES, extra_headers=scenario("disconnect")
        ) as stream,
    ):
        stream.until_done()


def test_disconnect_without_stream_drops_the_connection(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, extra_headers=scenario("disconnect"))


def test_disconnect_sends_part_of_a_block_then_no_terminator(http: httpx.Client) -> None:
    received = bytearray()
    with (
        http.stream(
            "POST", "/v1/messages", content=body(stream=True), headers=api_headers(**scenario("disconnect"))
        ) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        drain(response, into=received)

    assert [name for name, _ in parse_sse(bytes(received))][-2:] == ["ping", "content_block_delta"]


def drain(response: httpx.Response, into: bytearray) -> None:
    for chunk in response.iter_raw():
        into += chunk


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (body(model="gpt-4o"), 404, "model: gpt-4o"),
        (json.dumps({"model": MODEL, "messages": MESSAGES}).encode(), 400, "max_tokens: Field required"),
        (b"{not json", 400, "The request body is not valid JSON."),
    ],
)
def test_invalid_messages_requests_are_rejected(http: httpx.Client, payload: bytes, status: int, message: str) -> None:
    response = http.post("/v1/messages", content=payload, headers=api_headers())

    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_anthropic_version_is_required(http: httpx.Client) -> None:
    headers = api_headers()
    del headers["anthropic-version"]
    missing = http.post("/v1/messages", content=body(), headers=headers)
    wrong = http.post("/v1/messages", content=body(), headers=api_headers(anthropic_version="2020-01-01"))

    assert (missing.status_code, missing.json()["error"]["type"]) == (400, "invalid_request_error")
    assert wrong.status_code == 400


def test_unknown_routes_and_scenarios_answer_with_api_errors(http: httpx.Client) -> None:
    unknown_path = http.get("/v1/nothing-here", headers=api_headers())
    wrong_method = http.get("/v1/messages", headers=api_headers())
    unknown_scenario = http.post("/v1/messages", content=body(), headers=api_headers(**scenario("bogus")))

    assert (unknown_path.status_code, unknown_path.json()["error"]["type"]) == (404, "not_found_error")
    assert unknown_path.json()["request_id"] == unknown_path.headers["request-id"]
    assert wrong_method.status_code == 404
    assert unknown_scenario.status_code == 400


# -- authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "x-api-key header is required"),
        ({"x-api-key": "sk-ant-api03-wrong"}, "invalid x-api-key"),
        ({"authorization": f"Bearer {OAUTH_TOKEN}"}, "OAuth authentication is currently not supported."),
        (
            {"authorization": "Bearer sk-ant-oat01-unknown", "anthropic-beta": OAUTH_BETA},
            "Invalid bearer token",
        ),
    ],
)
def test_bad_credentials_get_401(http: httpx.Client, headers: dict[str, str], message: str) -> None:
    sent = {"anthropic-version": API_VERSION, "content-type": "application/json", **headers}
    response = http.post("/v1/messages", content=body(), headers=sent)

    assert response.status_code == 401
    assert response.json()["error"] == {"type": "authentication_error", "message": message}


def test_oauth_bearer_needs_the_oauth_beta(fake: FakeAnthropic) -> None:
    with anthropic.Anthropic(base_url=fake.url, auth_token=OAUTH_TOKEN, max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError, match="OAuth authentication is currently not supported"):
            sdk.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
        response = sdk.messages.with_raw_response.create(
            model=MODEL, max_tokens=8, messages=MESSAGES, extra_headers={"anthropic-beta": OAUTH_BETA}
        )

    assert response.status_code == 200
    assert response.headers["anthropic-ratelimit-unified-status"] == "allowed"
    assert "anthropic-ratelimit-requests-limit" not in response.headers


def test_expired_oauth_token_is_refused(fake: FakeAnthropic) -> None:
    fake.oauth_tokens[OAUTH_TOKEN] = time.time() - 1
    with (
        anthropic.Anthropic(
            base_url=fake.url, auth_token=OAUTH_TOKEN, max_retries=0, default_headers={"anthropic-beta": OAUTH_BETA}
        ) as sdk,
        pytest.raises(anthropic.AuthenticationError, match="OAuth token has expired"),
    ):
        sdk.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)


def test_an_api_key_may_come_as_a_bearer_token(http: httpx.Client) -> None:
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}", "anthropic-version": API_VERSION}
    assert http.post("/v1/messages", content=body(), headers=headers).status_code == 200


def test_auth_can_be_switched_off() -> None:
    with FakeAnthropic(require_auth=False) as fake:
        response = httpx.post(fake.url + "/v1/messages", content=body(), headers={"anthropic-version": API_VERSION})
    assert response.status_code == 200


# -- timing scenarios -----------------------------------------------------------------------------------


def test_client_going_away_mid_stream_is_recorded(fake: FakeAnthropic) -> None:
    with (
        httpx.Client(base_url=fake.url) as http,
        http.stream(
            "POST", "/v1/messages", content=body(stream=True), headers=api_headers(**scenario("slow:100"))
        ) as response,
    ):
        next(response.iter_raw())  # the stream is live; now hang up

    assert fake.wait_for(lambda: fake.cancelled_streams, timeout=2)
    assert fake.cancelled_streams[0].header(SCENARIO_HEADER) == "slow:100"


def test_a_finished_stream_is_not_counted_as_cancelled(fake: FakeAnthropic, http: httpx.Client) -> None:
    stream_raw(http)
    time.sleep(0.05)
    assert fake.cancelled_streams == []


def test_stall_sends_headers_then_nothing(fake: FakeAnthropic) -> None:
    began = time.monotonic()
    with (
        httpx.Client(base_url=fake.url, timeout=httpx.Timeout(5, read=0.3)) as http,
        http.stream(
            "POST", "/v1/messages", content=body(stream=True), headers=api_headers(**scenario("stall:2000"))
        ) as response,
    ):
        assert response.status_code == 200
        assert time.monotonic() - began < 1.0  # headers came well before the 2 s of silence ended
        with pytest.raises(httpx.ReadTimeout):
            next(response.iter_raw())


# -- other endpoints ------------------------------------------------------------------------------------


def test_count_tokens_matches_the_prompt_size_of_a_message(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    usage = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES).usage

    total = usage.input_tokens + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    assert counted.input_tokens == total > 0


def test_models_list_and_retrieve(client: anthropic.Anthropic) -> None:
    page = client.models.list(limit=2)
    everything = [model.id for model in client.models.list()]

    assert [model.id for model in page.data] == everything[:2]
    assert page.has_more
    assert "claude-opus-5" in everything
    assert [model.id for model in client.models.list(after_id=everything[-2])] == everything[-1:]
    assert client.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nonexistent")


def test_batches_lifecycle(client: anthropic.Anthropic) -> None:
    requests: Any = [
        {"custom_id": "a", "params": {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}},
        {"custom_id": "b", "params": {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}},
    ]
    created = client.messages.batches.create(requests=requests)
    assert created.id.startswith("msgbatch_")
    assert created.processing_status == "in_progress"

    ended = client.messages.batches.retrieve(created.id)
    assert (ended.processing_status, ended.request_counts.succeeded) == ("ended", 2)
    results = list(client.messages.batches.results(created.id))
    assert [result.custom_id for result in results] == ["a", "b"]
    assert results[0].result.type == "succeeded"
    assert [batch.id for batch in client.messages.batches.list()] == [created.id]

    canceled = client.messages.batches.cancel(client.messages.batches.create(requests=requests).id)
    assert canceled.processing_status == "canceling"
    assert client.messages.batches.retrieve(canceled.id).request_counts.canceled == 2

    assert client.messages.batches.delete(created.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(created.id)


def test_batch_results_are_jsonl_with_binary_content_type(client: anthropic.Anthropic, http: httpx.Client) -> None:
    batch = client.messages.batches.create(
        requests=[{"custom_id": "only", "params": {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}}]
    )
    client.messages.batches.retrieve(batch.id)
    response = http.get(f"/v1/messages/batches/{batch.id}/results", headers=api_headers())

    assert response.headers["content-type"] == "application/binary"
    assert [json.loads(line)["custom_id"] for line in response.content.splitlines()] == ["only"]


def test_files_lifecycle(client: anthropic.Anthropic) -> None:
    content = bytes(range(256)) + b"\r\n--not-a-boundary\r\n" + b"tail"
    uploaded = client.files.upload(file=("data.bin", content, "application/x-custom"))

    assert (uploaded.filename, uploaded.mime_type, uploaded.size_bytes) == (
        "data.bin",
        "application/x-custom",
        len(content),
    )
    assert client.files.retrieve_metadata(uploaded.id).id == uploaded.id
    assert [listed.id for listed in client.files.list()] == [uploaded.id]
    downloaded = client.files.download(uploaded.id)
    assert downloaded.read() == content
    assert downloaded.headers["content-type"] == "application/x-custom"
    assert client.files.delete(uploaded.id).type == "file_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.files.retrieve_metadata(uploaded.id)


# -- OAuth token endpoint -------------------------------------------------------------------------------


def refresh(http: httpx.Client, refresh_token: str, **overrides: Any) -> httpx.Response:
    payload: dict[str, Any] = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": DEFAULT_OAUTH_CLIENT_ID,
    }
    payload.update(overrides)
    return http.post("/v1/oauth/token", json={k: v for k, v in payload.items() if v is not None})


def test_refresh_rotates_tokens(fake: FakeAnthropic, http: httpx.Client) -> None:
    first = refresh(http, REFRESH_TOKEN)
    tokens = first.json()

    assert first.status_code == 200
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"].startswith("sk-ant-oat01-")
    assert tokens["refresh_token"].startswith("sk-ant-ort01-")
    assert (tokens["expires_in"], tokens["scope"]) == (28800, "user:inference user:profile")

    reused = refresh(http, REFRESH_TOKEN)
    assert (reused.status_code, reused.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Refresh token not found or invalid"},
    )
    second = refresh(http, tokens["refresh_token"])
    assert second.status_code == 200
    assert second.json()["access_token"] != tokens["access_token"]
    assert len(fake.token_requests) == 3
    assert fake.token_requests[0]["refresh_token"] == REFRESH_TOKEN

    headers = {"authorization": f"Bearer {tokens['access_token']}", "anthropic-beta": OAUTH_BETA}
    used = http.post("/v1/messages", content=body(), headers={**headers, "anthropic-version": API_VERSION})
    assert used.status_code == 200


def test_refresh_without_client_id_is_an_invalid_request(http: httpx.Client) -> None:
    response = refresh(http, REFRESH_TOKEN, client_id=None)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid_request", "error_description": "Invalid request format"},
    )


def test_concurrent_refreshes_of_one_token_have_one_winner() -> None:
    with FakeAnthropic(refresh_tokens={REFRESH_TOKEN: OAUTH_TOKEN}, token_delay_ms=100) as fake:
        with httpx.Client(base_url=fake.url) as http, ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(lambda _: refresh(http, REFRESH_TOKEN).status_code, range(2)))
        assert statuses == [200, 400]
        assert len(fake.token_requests) == 2  # both reached the endpoint; only one could rotate


# -- recording and determinism --------------------------------------------------------------------------


def test_recorded_headers_keep_order_case_and_duplicates(fake: FakeAnthropic, http: httpx.Client) -> None:
    sent = [
        ("X-Api-Key", DEFAULT_API_KEY),
        ("anthropic-version", API_VERSION),
        ("Anthropic-Beta", "b-two,b-one"),
        ("X-Custom", "first"),
        ("x-custom", "second"),
    ]
    http.post("/v1/messages?beta=true&x=1", content=body(), headers=sent)
    recorded = fake.last_request

    assert [pair for pair in recorded.headers if pair[0].lower() in {n.lower() for n, _ in sent}] == sent
    assert recorded.header_values("X-CUSTOM") == ["first", "second"]
    assert recorded.betas == ["b-two", "b-one"]
    assert (recorded.method, recorded.path, recorded.query_string) == ("POST", "/v1/messages", "beta=true&x=1")
    assert recorded.body == body()


@pytest.mark.parametrize("stream", [False, True])
def test_identical_requests_get_identical_bytes(http: httpx.Client, *, stream: bool) -> None:
    payload = body(stream=stream) if stream else body()
    responses = [http.post("/v1/messages", content=payload, headers=api_headers()) for _ in range(2)]
    other = http.post("/v1/messages", content=body(max_tokens=65), headers=api_headers())

    assert responses[0].content == responses[1].content
    assert responses[0].headers["request-id"] == responses[1].headers["request-id"]
    assert other.headers["request-id"] != responses[0].headers["request-id"]

    def stable(response: httpx.Response) -> list[tuple[str, str]]:
        return [(k, v) for k, v in response.headers.multi_items() if k != "date"]

    assert stable(responses[0]) == stable(responses[1])


def test_echo_describes_the_request(fake: FakeAnthropic, http: httpx.Client) -> None:
    response = http.post("/v1/messages/count_tokens?beta=true", content=b"abc", headers=api_headers(**scenario("echo")))
    echo = response.json()

    assert (echo["method"], echo["path"], echo["query"]) == ("POST", "/v1/messages/count_tokens", "beta=true")
    assert [SCENARIO_HEADER, "echo"] in echo["headers"]
    assert echo["body_sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_clear_forgets_recordings(fake: FakeAnthropic, http: httpx.Client) -> None:
    http.get("/v1/models", headers=api_headers())
    refresh(http, REFRESH_TOKEN)
    assert len(fake.requests) == 2
    fake.clear()

    assert (fake.requests, fake.token_requests, fake.cancelled_streams) == ([], [], [])
    with pytest.raises(LookupError):
        _ = fake.last_request


# -- values PostgreSQL refuses, and bodies the real API refuses ---------------------------------------


def test_odd_values_carry_nul_and_numbers_past_float_in_both_forms(http: httpx.Client) -> None:
    response = http.post("/v1/messages", content=body(), headers=api_headers(**{SCENARIO_HEADER: "odd_values"}))
    assert b"1e400" in response.content
    assert b"\\u0000" in response.content
    message = json.loads(response.content)
    assert "\x00" in message["content"][0]["text"]
    assert message["content"][1]["input"] == {
        "big": float("inf"),  # what Python's json makes of 1e400
        "long": 1234567890123456789012345678901234567890,
        "nul": "a\x00b",
    }
    streamed, raw = stream_raw(http, "odd_values")
    assert streamed.status_code == 200
    fragments = "".join(delta["partial_json"] for delta in deltas(parse_sse(raw), 1))
    assert json.loads(fragments) == message["content"][1]["input"]
    assert '"big": 1e400' in fragments


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (rb"cut inside \ud83d", "no low surrogate in string: line 1 column"),
        (rb"\udc00 alone", "lone leading surrogate in hex escape: line 1 column"),
    ],
)
def test_a_lone_surrogate_is_refused_as_the_real_api_does(http: httpx.Client, text: bytes, complaint: str) -> None:
    raw = b'{"model":"claude-sonnet-5","max_tokens":8,"messages":[{"role":"user","content":"' + text + b'"}]}'
    response = http.post("/v1/messages", content=raw, headers=api_headers())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"The request body is not valid JSON: {complaint}")


def test_a_surrogate_pair_and_an_escaped_backslash_are_no_lone_surrogates(http: httpx.Client) -> None:
    raw = rb'{"model":"claude-sonnet-5","max_tokens":8,"messages":[{"role":"user","content":"\ud83d\ude00 \\ud83d"}]}'
    assert http.post("/v1/messages", content=raw, headers=api_headers()).status_code == 200
