"""Every exchange lands in PostgreSQL, whatever its outcome, without changing what clients get."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.database import query, request_body, response_raw, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
def recording_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))


def test_a_streamed_claude_code_turn_is_recorded_completely(
    fake: FakeAnthropic, recording_proxy: RunningProxy, database_url: str
) -> None:
    client = sdk(recording_proxy.url, default_headers={
        "x-claude-code-session-id": "5b0e1c9e-2f6a-4d1b-9d55-0c2f1e3a4b5c",
        "x-claude-code-agent-id": "agent-7",
        "user-agent": "claude-cli/2.1.330 (external, cli)",
    })  # fmt: skip
    with client.messages.with_streaming_response.create(
        model="claude-sonnet-5",
        max_tokens=256,
        system=SYSTEM,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Read the config file, please."}],
        stream=True,
        extra_headers={SCENARIO_HEADER: "tool_use"},
        extra_query={"beta": "true"},
    ) as response:
        relayed = response.read()
        request_id = response.headers["x-request-id"]
    with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=256,
        system=SYSTEM,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Read the config file, please."}],
        extra_headers={SCENARIO_HEADER: "tool_use"},
    ) as stream:
        final = stream.get_final_message()

    [row, _] = wait_for_rows(database_url, 2)
    assert str(row["id"]) == request_id
    assert (row["state"], row["status"], row["stream"], row["method"], row["path"], row["query"]) == (
        "complete", 200, True, "POST", "/v1/messages", "beta=true",
    )  # fmt: skip
    assert row["request_type"] == "inference", "two system blocks besides the billing header"
    assert row["prompt_text"] == "Read the config file, please.", "the last user message's text, for the dashboard"
    assert (row["model_requested"], row["model"]) == ("claude-sonnet-5", final.model)
    assert (row["input_tokens"], row["output_tokens"]) == (final.usage.input_tokens, final.usage.output_tokens)
    assert row["cost_usd"] is not None
    assert row["cost_usd"] > Decimal(0)
    assert row["price_version"]
    assert row["tool_call_count"] == 1
    assert row["first_token_ms"] is not None
    assert row["first_token_ms"] <= row["duration_ms"]
    assert (row["session_id"], row["agent_id"]) == ("5b0e1c9e-2f6a-4d1b-9d55-0c2f1e3a4b5c", "agent-7")
    assert row["user_agent"] == "claude-cli/2.1.330 (external, cli)"
    assert row["upstream_request_id"].startswith("req_")
    assert (row["domain"], row["account_id"]) == (f"127.0.0.1:{recording_proxy.port}",) * 2
    headers = dict(json.loads(row["request_headers"]))
    assert headers["authorization"] == "Bearer ********", "credentials are never stored"
    assert DEFAULT_API_KEY not in row["request_headers"]
    assert request_body(database_url, row) == fake.requests[0].body, "the exact bytes sent"
    assert response_raw(row) == relayed, "the stream, replayable byte for byte"
    rebuilt = json.loads(row["response_body"])
    assert rebuilt["content"] == [block.model_dump(exclude_none=True) for block in final.content]
    assert rebuilt["stop_reason"] == "tool_use"


def test_every_outcome_is_recorded_with_its_state(
    fake: FakeAnthropic, recording_proxy: RunningProxy, database_url: str
) -> None:
    url = f"{recording_proxy.url}/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    stream = {**body, "stream": True}
    assert httpx.post(url, json=body, headers=HEADERS).status_code == 200
    assert httpx.post(url, json=body, headers={**HEADERS, SCENARIO_HEADER: "error:429"}).status_code == 429
    assert httpx.post(url, content=b"{not json", headers=HEADERS).status_code == 400
    assert httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"}).status_code == 401
    with httpx.stream("POST", url, json=stream, headers={**HEADERS, SCENARIO_HEADER: "mid_stream_error"}) as r:
        r.read()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", url, json=stream, headers={**HEADERS, SCENARIO_HEADER: "disconnect"}) as r,
    ):
        r.read()
    with httpx.stream("POST", url, json=stream, headers={**HEADERS, SCENARIO_HEADER: "slow:200"}) as r:
        next(r.iter_raw())
    fake.wait_for(lambda: len(fake.cancelled_streams) >= 1)
    assert sdk(recording_proxy.url).models.list().data
    assert httpx.get(f"{recording_proxy.url}/api/hello").status_code == 200

    rows = wait_for_rows(database_url, 8)
    summary = [(row["status"], row["state"]) for row in rows]
    assert summary == [
        (200, "complete"),
        (429, "upstream_error"),
        (400, "rejected"),
        (401, "rejected"),
        (200, "upstream_error"),
        (200, "truncated"),
        (200, "client_cancelled"),
        (200, "complete"),
    ]
    assert rows[0]["cost_usd"] > 0
    assert json.loads(rows[1]["response_body"])["error"]["type"] == "rate_limit_error"
    assert request_body(database_url, rows[2]) == b"{not json", "what could be read is kept"
    assert rows[2]["error"].startswith("invalid_request_error")
    assert rows[3]["account_id"] == rows[3]["domain"]
    models = rows[7]
    assert (models["method"], models["path"], models["request_body"], models["response_raw"]) == (
        "GET", "/v1/models", None, None,
    )  # fmt: skip
    assert len(query(database_url, "SELECT id FROM exchanges")) == 8, "side calls are not recorded"


def test_store_bodies_off_keeps_metadata_and_usage_only(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path), STORE_BODIES="false")
    message = sdk(proxy.url).messages.create(
        model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    [row] = wait_for_rows(database_url, 1)
    assert row["output_tokens"] == message.usage.output_tokens
    assert (row["request_body"], row["response_body"], row["response_raw"]) == (None, None, None)
    assert row["prompt_text"] is None, "nor the prompt's text"
    assert query(database_url, "SELECT count(*) AS n FROM body_parts") == [{"n": 0}]


def test_a_conversation_costs_storage_in_proportion_to_its_turns(
    fake: FakeAnthropic, recording_proxy: RunningProxy, database_url: str
) -> None:
    client = sdk(recording_proxy.url)
    messages: list[dict[str, str]] = []
    sent = 0
    for turn in range(30):
        messages.append({"role": "user", "content": f"Turn {turn}: " + "please look at this file. " * 40})
        reply = client.messages.create(model="claude-sonnet-5", max_tokens=16, messages=messages)  # type: ignore[arg-type]
        sent += len(fake.last_request.body)
        messages.append({"role": "assistant", "content": reply.content[0].text})  # type: ignore[union-attr]
    rows = wait_for_rows(database_url, 30)
    stored = (
        sum(len(row["request_body"]) for row in rows)
        + query(database_url, "SELECT sum(length(data)) AS n FROM body_parts")[0]["n"]
    )
    assert stored < sent / 10, f"{stored} bytes stored for {sent} bytes of bodies"
    assert request_body(database_url, rows[-1]) == fake.last_request.body
