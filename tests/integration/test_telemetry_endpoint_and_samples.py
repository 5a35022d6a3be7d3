"""The original's per-request telemetry POST and its test-sample files, from real traffic."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_slack_notifications import eventually, send, turn
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy
from tests.support.slack_receiver import Answer, SlackReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver() as server:
        yield server


def test_each_request_is_posted_as_the_original_telemetry_json(
    start_proxy: Callable[..., RunningProxy], receiver: SlackReceiver
) -> None:
    proxy = start_proxy(TELEMETRY_ENDPOINT=receiver.webhook("telemetry"), STORAGE_ENABLED="false")
    ok = send(proxy, turn("count me"), scenario="tool_use")
    failed = send(proxy, turn("fail me"), scenario="error:400")
    assert (ok.status_code, failed.status_code) == (200, 400)

    posted = {item["requestId"]: item for item in receiver.wait_for(2, "telemetry")}
    first = posted[ok.headers["x-request-id"]]
    assert set(first) == {
        "requestId",
        "timestamp",
        "domain",
        "apiKey",
        "model",
        "inputTokens",
        "outputTokens",
        "duration",
        "status",
        "toolCallCount",
        "requestType",
    }
    assert first["apiKey"] == "***" + DEFAULT_API_KEY[-10:]
    assert DEFAULT_API_KEY not in json.dumps(posted)
    assert (first["status"], first["requestType"], first["toolCallCount"], first["model"]) == (
        200,
        "inference",
        1,
        "claude-sonnet-5",
    )
    assert first["inputTokens"] > 0
    assert first["outputTokens"] > 0
    assert first["timestamp"].endswith("+00:00")
    error = posted[failed.headers["x-request-id"]]
    assert (error["status"], error["error"]) == (400, "HTTP 400")

    def sent() -> int:
        detail = httpx.get(f"{proxy.url}/health").json()["checks"]["notifications"]["telemetry_endpoint"]
        return int(detail["sent"])

    assert eventually(lambda: sent() == 2), "the child reports its counts within REPORT_S"


def test_an_endpoint_that_is_down_costs_the_client_nothing(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(TELEMETRY_ENDPOINT="http://127.0.0.1:9/telemetry", STORAGE_ENABLED="false")
    assert send(proxy, turn("nobody listens")).status_code == 200

    def failed() -> bool:
        checks = httpx.get(f"{proxy.url}/health").json()["checks"]
        return bool(checks["notifications"]["telemetry_endpoint"]["failed"] == 1)

    assert eventually(failed)


def test_samples_are_written_whole_with_credentials_masked(
    start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    proxy = start_proxy(COLLECT_TEST_SAMPLES="true", TEST_SAMPLES_DIR=str(samples), STORAGE_ENABLED="false")
    streamed = turn("sample me")
    streamed = streamed.replace(b'"max_tokens": 64', b'"max_tokens": 64, "stream": true')
    answer = send(proxy, streamed)
    assert answer.status_code == 200
    assert eventually(lambda: any(samples.glob("*.json")))
    [path] = list(samples.glob("*.json"))
    assert path.name.startswith("inference_streaming_claude-sonnet-5-")
    assert path.name.endswith(answer.headers["x-request-id"][:8] + ".json")
    text = path.read_text()
    assert DEFAULT_API_KEY not in text
    sample = json.loads(text)
    assert sample["request"]["headers"]["x-api-key"] == "********"
    assert sample["request"]["body"]["messages"][-1]["content"] == "sample me"
    assert sample["response"]["status"] == 200
    assert "event: message_stop" in sample["response"]["body"]
    assert not list(samples.glob("*.partial-*")), "nothing half-written is left"


def test_what_is_queued_at_shutdown_is_still_delivered(fake: FakeAnthropic, receiver: SlackReceiver) -> None:
    receiver.script["telemetry"] = [Answer(delay_s=0.3) for _ in range(5)]  # a slow endpoint
    with RunningProxy(
        CLAUDE_API_BASE_URL=fake.url,
        TELEMETRY_ENDPOINT=receiver.webhook("telemetry"),
        STORAGE_ENABLED="false",
    ) as proxy:
        ids = {send(proxy, turn(f"request {n}")).headers["x-request-id"] for n in range(5)}
    # The proxy has stopped; nothing was waited for before stopping it.
    assert {item["requestId"] for item in receiver.received("telemetry")} == ids


def test_the_sending_process_is_replaced_if_it_dies_and_never_outlives_the_proxy(
    start_proxy: Callable[..., RunningProxy], receiver: SlackReceiver
) -> None:
    proxy = start_proxy(TELEMETRY_ENDPOINT=receiver.webhook("telemetry"), STORAGE_ENABLED="false")
    send(proxy, turn("first"))
    receiver.wait_for(1, "telemetry")
    [child] = children_running("nexus.adapters.webhook_process.child")
    os.kill(child, signal.SIGKILL)
    assert eventually(lambda: children_running("nexus.adapters.webhook_process.child") not in ([], [child]))
    send(proxy, turn("second"))
    assert len(receiver.wait_for(2, "telemetry")) == 2
    proxy.__exit__(None, None, None)
    assert eventually(lambda: children_running("nexus.adapters.webhook_process.child") == [])


def children_running(module: str) -> list[int]:
    """Processes of this test run whose command line runs ``module``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if module.encode() in command and parent == os.getpid():
            found.append(int(entry.name))
    return found
