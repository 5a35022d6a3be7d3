"""AI analysis with Gemini: the API, the in-process worker and the real ``google-genai`` client
against a loopback fake of Gemini's REST API, over a real database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ANALYSIS_KEY, sdk
from tests.integration.test_api_conversations import chat, review
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.fake_gemini import ANALYSIS, API_KEY, Answer, FakeGemini
from tests.support.processes import free_port
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

KEY = ANALYSIS_KEY
AUTH = {"x-api-key": KEY}
SECRET = "sk-ant-api03-SecretValueThatMustNeverLeave0123456789"
CLIENT_KEY = "cnp_live_analysis_client_key_0123456789"


def conversation(proxy: RunningProxy, *turns: str) -> str:
    ids = chat(proxy, *turns)
    wait_for(lambda: httpx.get(f"{proxy.url}/api/conversations/{ids[0]}", headers=AUTH).status_code == 200)
    wait_for(
        lambda: len(httpx.get(f"{proxy.url}/api/conversations/{ids[0]}", headers=AUTH).json()["nodes"]) == len(ids)
    )
    return ids[0]


def request(proxy: RunningProxy, conversation_id: str, **extra: Any) -> httpx.Response:
    body = {"conversationId": conversation_id, "branchId": "main", **extra}
    return httpx.post(f"{proxy.url}/api/analyses", json=body, headers=AUTH)


def finished(proxy: RunningProxy, conversation_id: str, timeout: float = 15) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(httpx.get(f"{proxy.url}/api/analyses/{conversation_id}/main", headers=AUTH).json())
        return found.get("status") in ("completed", "failed")

    wait_for(done, timeout=timeout)
    return found


def test_a_branch_is_analysed_by_gemini_with_secrets_redacted(
    analysing: Callable[..., RunningProxy], gemini: FakeGemini
) -> None:
    proxy = analysing()
    conversation_id = conversation(proxy, f"Add retries to the client. My key is {SECRET}", "Now add tests")

    queued = request(proxy, conversation_id)

    assert queued.status_code == 201, queued.text
    assert queued.json()["status"] == "pending"
    result = finished(proxy, conversation_id)
    assert result["status"] == "completed", result
    assert result["analysis"] == ANALYSIS
    assert result["model"] == gemini.model_version
    assert result["tokenUsage"] == {"input": 1234, "output": 321}
    assert result["attempts"] == 1
    (sent,) = gemini.received()
    assert sent["key"] == API_KEY
    assert sent["model"] == "gemini-2.5-pro"
    text = json.dumps(sent["body"])
    assert SECRET not in text
    assert "[REDACTED_ANTHROPIC_KEY]" in text
    assert "Add retries to the client" in text
    assert "Now add tests" in text
    config = sent["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"][0] == "summary"
    assert "You review a conversation" in sent["body"]["systemInstruction"]["parts"][0]["text"]

    again = request(proxy, conversation_id)
    assert again.status_code == 200
    assert again.json()["message"] == "Already done"
    assert len(gemini.received()) == 1


def test_an_answer_that_does_not_fit_is_asked_again_then_kept_raw(
    analysing: Callable[..., RunningProxy], gemini: FakeGemini
) -> None:
    proxy = analysing()
    first, second = conversation(proxy, "First task"), conversation(proxy, "Second task")
    gemini.script = [Answer("misfit")]

    assert request(proxy, first).status_code == 201
    fixed = finished(proxy, first)
    assert fixed["status"] == "completed"
    reminder = gemini.received()[1]["body"]["systemInstruction"]["parts"][0]["text"]
    assert "was not valid for the schema" in reminder

    gemini.script = [Answer("misfit"), Answer("misfit")]
    assert request(proxy, second).status_code == 201
    kept = finished(proxy, second)
    assert kept["status"] == "failed"
    assert kept["error"].startswith("The model's answer does not fit the analysis schema")
    assert kept["rawAnswer"] == '{"summary": "only a summary"}'
    assert kept["analysis"] is None


def test_rate_limits_and_outages_are_retried_with_backoff_then_fail(
    analysing: Callable[..., RunningProxy], gemini: FakeGemini
) -> None:
    proxy = analysing(AI_ANALYSIS_REQUEST_TIMEOUT_MS="500")
    recovers, gives_up = conversation(proxy, "Retry me"), conversation(proxy, "Never answered")
    gemini.script = [Answer("status", status=429, retry_delay="0.2s"), Answer("slow", delay_s=3)]

    assert request(proxy, recovers).status_code == 201
    recovered = finished(proxy, recovers, timeout=30)
    assert recovered["status"] == "completed", recovered
    assert recovered["attempts"] == 3, "a 429, a timeout, then the answer"

    gemini.script = [Answer("status", status=503)] * 3
    assert request(proxy, gives_up).status_code == 201
    failed = finished(proxy, gives_up, timeout=30)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 3
    assert failed["error"] == "Gemini answered 503 UNAVAILABLE"


def test_the_api_refuses_clearly(analysing: Callable[..., RunningProxy]) -> None:
    proxy = analysing(AI_ANALYSIS_RATE_LIMIT_CREATION="1")
    first, second = conversation(proxy, "One"), conversation(proxy, "Two")

    malformed = request(proxy, "not-a-uuid")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    unknown = request(proxy, str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert "has no branch 'main'" in unknown.json()["error"]["message"]
    extra = httpx.post(f"{proxy.url}/api/analyses", json={"conversationId": first, "colour": "red"}, headers=AUTH)
    assert extra.status_code == 400
    assert httpx.post(f"{proxy.url}/api/analyses", json={"conversationId": first}).status_code == 401
    missing = httpx.get(f"{proxy.url}/api/analyses/{first}/main", headers=AUTH)
    assert missing.status_code == 404

    assert request(proxy, first).status_code == 201
    limited = request(proxy, second)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 0 < int(limited.headers["retry-after"]) <= 60

    spec = httpx.get(f"{proxy.url}/docs/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values() if "operationId" in op}
    assert {"RequestAnalysis", "GetAnalysis", "RegenerateAnalysis"} <= operations


def test_regenerate_runs_again_with_a_custom_prompt(analysing: Callable[..., RunningProxy], gemini: FakeGemini) -> None:
    proxy = analysing()
    conversation_id = conversation(proxy, "Explain the linker")
    request(proxy, conversation_id)
    assert finished(proxy, conversation_id)["status"] == "completed"

    again = httpx.post(
        f"{proxy.url}/api/analyses/{conversation_id}/main/regenerate",
        json={"customPrompt": "Focus on how the developer tested."},
        headers=AUTH,
    )

    assert again.status_code == 201, again.text
    assert again.json()["status"] == "pending"
    wait_for(lambda: len(gemini.received()) == 2)
    redone = finished(proxy, conversation_id)
    assert redone["status"] == "completed"
    assert redone["customPrompt"] == "Focus on how the developer tested."
    brief = gemini.received()[1]["body"]["systemInstruction"]["parts"][0]["text"]
    assert brief.startswith("Focus on how the developer tested.")


def test_without_storage_the_api_says_so(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DASHBOARD_API_KEY=KEY)
    response = request(proxy, str(uuid.uuid4()))
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"


def test_claude_analyses_through_this_proxy_as_a_domains_traffic(
    fake: FakeAnthropic, database_url: str, credentials_dir: Path, tmp_path: Path
) -> None:
    (credentials_dir / "analysis.example.credentials.json").write_text(
        json.dumps(
            {"type": "api_key", "accountId": "acc_analysis", "api_key": DEFAULT_API_KEY, "client_api_key": CLIENT_KEY}
        )
    )
    port = free_port()
    settings = {
        "CLAUDE_API_BASE_URL": fake.url,
        "CREDENTIALS_DIR": str(credentials_dir),
        "DATABASE_URL": database_url,
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_API_KEY": KEY,
        "AI_WORKER_ENABLED": "true",
        "AI_ANALYZER": "claude",
        "AI_ANALYSIS_CLAUDE_URL": f"http://127.0.0.1:{port}",
        "AI_ANALYSIS_CLAUDE_HOST": "analysis.example",
        "AI_ANALYSIS_CLAUDE_API_KEY": CLIENT_KEY,
        "AI_WORKER_POLL_INTERVAL_MS": "100",
    }
    with RunningProxy(port=port, **settings) as proxy:
        conversation_id = conversation(proxy, f"Refactor the parser. Token: {SECRET}")
        fake.fail_next(529)  # overloaded once: the proxy's own upstream retry absorbs it
        fake.answer_forced_tool_with({"summary": "not enough"}, ANALYSIS)

        assert request(proxy, conversation_id).status_code == 201
        result = finished(proxy, conversation_id, timeout=30)

        assert result["status"] == "completed", result
        assert result["analysis"] == ANALYSIS
        assert result["attempts"] == 1, "the 529 retried by the proxy, the misfit asked again within the attempt"
        assert result["model"] == "claude-sonnet-5"
        assert result["tokenUsage"]["input"] > 0
        calls = [r for r in fake.requests if r.path == "/v1/messages" and r.json().get("tool_choice")]
        assert len(calls) == 3, "the 529, its retry (a misfit), the answer asked again"
        body = calls[-1].json()
        assert body["tool_choice"] == {"type": "tool", "name": "record_analysis"}
        assert body["tools"][0]["input_schema"]["required"][0] == "summary"
        assert "was not valid for the schema" in body["system"]
        assert SECRET not in calls[-1].body.decode()
        assert "Refactor the parser" in body["messages"][0]["content"]
        assert calls[-1].header("x-api-key") == DEFAULT_API_KEY, "the domain's credential pays"
        recorded = httpx.get(f"{proxy.url}/api/requests", params={"domain": "analysis.example"}, headers=AUTH).json()
        assert recorded["total"] >= 1, "the analysis is the domain's recorded traffic"


def test_a_sub_agents_branch_is_analysed_from_its_own_turns(
    analysing: Callable[..., RunningProxy], gemini: FakeGemini
) -> None:
    proxy = analysing()
    traffic = review(proxy)
    url = f"{proxy.url}/api/conversations/{traffic.root}"
    wait_for(lambda: len(httpx.get(url, headers=AUTH).json().get("nodes", [])) == len(traffic.ids), timeout=15)
    branches = httpx.get(url, headers=AUTH).json()["branches"]
    first = next(b["branch_id"] for b in branches if b["first_request_id"] == traffic.first[0])

    queued = httpx.post(
        f"{proxy.url}/api/analyses", json={"conversationId": traffic.root, "branchId": first}, headers=AUTH
    )

    assert queued.status_code == 201, queued.text
    wait_for(
        lambda: (
            httpx.get(f"{proxy.url}/api/analyses/{traffic.root}/{first}", headers=AUTH).json()["status"] == "completed"
        )
    )
    sent = json.dumps(gemini.received()[-1]["body"])
    assert "Look closer at the handlers." in sent, "the sub-agent's own turns"
    assert "Raise the timeouts." not in sent, "not the main branch's"


def test_a_plain_sdk_conversation_is_analysed_too(analysing: Callable[..., RunningProxy], gemini: FakeGemini) -> None:
    """No system prompt: threaded by THREAD_RULE=any_client (ADR 19), so analysable like Claude Code's."""
    proxy = analysing()
    client = sdk(proxy.url)
    messages: list[dict[str, Any]] = []
    ids = []
    for text in ("Explain write-ahead logging.", "And group commit?"):
        messages.append({"role": "user", "content": text})
        raw = client.messages.with_raw_response.create(model="claude-sonnet-5", max_tokens=32, messages=messages)
        ids.append(raw.headers["x-request-id"])
        messages.append({"role": "assistant", "content": raw.parse().content[0].text})  # type: ignore[union-attr]
    wait_for(
        lambda: len(httpx.get(f"{proxy.url}/api/conversations/{ids[0]}", headers=AUTH).json().get("nodes", [])) == 2
    )
    assert request(proxy, ids[0]).status_code == 201
    assert finished(proxy, ids[0])["status"] == "completed"
    (sent,) = gemini.received()
    text = json.dumps(sent["body"])
    assert "Explain write-ahead logging." in text
    assert "And group commit?" in text
