"""The proxy's own traffic limits: requests and tokens per minute, concurrent streams and daily
cost, for all traffic, a domain and a client key; a refusal is Anthropic's 429 with our headers."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.database import query
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.processes import ProxyProcess, run_cli
from tests.support.proxy_server import RunningProxy
from tests.support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def send(
    proxy: RunningProxy, *, host: str = "team.example", key: str = DEFAULT_API_KEY, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{proxy.url}/v1/messages",
        json=BODY,
        headers={"host": host, "x-api-key": key, "anthropic-version": "2023-06-01", **headers},
        timeout=30,
    )


def upstream_calls(fake: FakeAnthropic) -> int:
    return sum(1 for request in fake.requests if request.path == "/v1/messages")


def test_a_domains_requests_per_minute_are_refused_past_the_limit(
    start_proxy: Callable[..., RunningProxy], fake: FakeAnthropic
) -> None:
    proxy = start_proxy(DOMAIN_RATE_LIMIT_REQUESTS_PER_MINUTE="3")
    assert [send(proxy).status_code for _ in range(3)] == [200, 200, 200]

    refused = send(proxy)

    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"].startswith("Rate limit of team.example reached: 3 requests per minute")
    assert body["request_id"] == refused.headers["x-request-id"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-nexus-ratelimit-scope"] == "domain"
    assert refused.headers["x-nexus-ratelimit-measure"] == "requests"
    assert refused.headers["x-nexus-ratelimit-limit"] == "3"
    assert refused.headers["x-nexus-ratelimit-remaining"] == "0"
    assert upstream_calls(fake) == 3, "the refused request never went upstream"
    assert send(proxy, host="other.example").status_code == 200, "each domain its own count"

    client = sdk(proxy.url, default_headers={"host": "team.example"})
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**BODY)  # type: ignore[call-overload]
    assert raised.value.status_code == 429


def test_a_credential_files_limits_override_the_defaults_and_the_global_limit_covers_all(
    start_proxy: Callable[..., RunningProxy], credentials_dir: Path
) -> None:
    (credentials_dir / "strict.example.credentials.json").write_text(
        json.dumps({"type": "api_key", "api_key": DEFAULT_API_KEY, "limits": {"requests_per_minute": 1}})
    )
    proxy = start_proxy(DOMAIN_RATE_LIMIT_REQUESTS_PER_MINUTE="100", RATE_LIMIT_REQUESTS_PER_MINUTE="4")
    assert send(proxy, host="strict.example").status_code == 200
    assert send(proxy, host="strict.example").status_code == 429
    assert [send(proxy, host=f"d{n}.example").status_code for n in range(3)] == [200, 200, 200]

    everything = send(proxy, host="d9.example")

    assert everything.status_code == 429
    assert everything.headers["x-nexus-ratelimit-scope"] == "global"
    assert "Rate limit of all traffic reached: 4 requests per minute" in everything.json()["error"]["message"]


def test_each_client_key_has_its_own_limit(start_proxy: Callable[..., RunningProxy], credentials_dir: Path) -> None:
    # The domain's own key goes upstream; each client's key only names the client.
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "api_key", "api_key": DEFAULT_API_KEY})
    )
    proxy = start_proxy(KEY_RATE_LIMIT_REQUESTS_PER_MINUTE="1")
    assert send(proxy, key="sk-ant-api03-alice").status_code == 200
    refused = send(proxy, key="sk-ant-api03-alice")
    assert refused.status_code == 429
    assert refused.headers["x-nexus-ratelimit-scope"] == "key"
    assert "sk-ant-api03-alice" not in refused.text, "the key is never named"
    assert send(proxy, key="sk-ant-api03-bob").status_code == 200


def test_tokens_per_minute_count_what_was_answered(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DOMAIN_RATE_LIMIT_TOKENS_PER_MINUTE="10")
    assert send(proxy).status_code == 200  # its usage (more than 10 tokens) is counted once answered
    time.sleep(0.2)

    refused = send(proxy)

    assert refused.status_code == 429
    assert refused.headers["x-nexus-ratelimit-measure"] == "tokens"
    assert int(refused.headers["retry-after"]) >= 1


def test_concurrent_streams_are_limited_while_they_run(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DOMAIN_RATE_LIMIT_CONCURRENT_STREAMS="1")
    slow: list[int] = []
    running = threading.Thread(target=lambda: slow.append(send(proxy, **{SCENARIO_HEADER: "slow:1500"}).status_code))
    running.start()
    time.sleep(0.5)

    refused = send(proxy)

    running.join()
    assert refused.status_code == 429
    assert refused.headers["x-nexus-ratelimit-measure"] == "streams"
    assert refused.headers["retry-after"] == "1"
    assert slow == [200]
    assert send(proxy).status_code == 200, "the stream is given back when it ends"


def test_a_daily_cost_limit_waits_for_the_next_utc_day(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DOMAIN_RATE_LIMIT_DAILY_USD="0.000001")
    assert send(proxy).status_code == 200
    time.sleep(0.2)

    refused = send(proxy)

    assert refused.status_code == 429
    assert refused.headers["x-nexus-ratelimit-measure"] == "cost"
    now = time.time()
    assert abs(int(refused.headers["retry-after"]) - (86_400 - now % 86_400)) < 5
    assert "$0.00 per UTC day" in refused.json()["error"]["message"]


def test_a_refusal_is_recorded_as_rejected(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(
        DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DOMAIN_RATE_LIMIT_REQUESTS_PER_MINUTE="1"
    )
    send(proxy)
    refused = send(proxy)
    assert refused.status_code == 429
    rid = refused.headers["x-request-id"]

    rows: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        rows = query(database_url, "SELECT status, state, error FROM exchanges WHERE id = $1", rid)
        time.sleep(0.05)
    assert rows, "recorded"
    assert rows[0]["status"] == 429
    assert rows[0]["state"] == "rejected"
    assert str(rows[0]["error"]).startswith("rate_limit_error: Rate limit of team.example reached")


def test_two_workers_hold_a_limit_within_the_documented_bound(
    fake: FakeAnthropic, database_url: str, tmp_path: Path
) -> None:
    env = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "true", "DATABASE_URL": database_url}
    assert run_cli("migrate", cwd=tmp_path, env=env, timeout=90).returncode == 0
    limit, interval_s, rate_per_s = 20, 0.2, 20
    proxy = ProxyProcess(
        cwd=tmp_path,
        env={
            **env,
            "DOMAIN_RATE_LIMIT_REQUESTS_PER_MINUTE": str(limit),
            "RATE_LIMIT_SYNC_MS": str(int(interval_s * 1000)),
        },
        args=("--workers", "2"),
    ).wait_ready(timeout=60)
    try:
        statuses = []
        for _ in range(3 * rate_per_s):  # three seconds of traffic, each request on a new connection
            statuses.append(send(proxy).status_code)
            time.sleep(1 / rate_per_s)
        workers = query(
            database_url, "SELECT count(DISTINCT worker) AS n FROM traffic_shares WHERE scope LIKE 'domain%'"
        )
    finally:
        proxy.stop()

    admitted = statuses.count(200)
    # The bound (ADR 15): what the other worker admits within one sync interval, plus a round trip.
    bound = math.ceil(rate_per_s * interval_s) + 2
    assert set(statuses) <= {200, 429}
    assert limit <= admitted <= limit + bound, (admitted, statuses)
    assert workers[0]["n"] == 2, "both workers admitted requests and shared their counts"


def in_session(proxy: RunningProxy, session: str, **headers: str) -> httpx.Response:
    return send(proxy, **{"x-claude-code-session-id": session, **headers})


def test_a_runaway_session_is_refused_and_alerted(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver
) -> None:
    proxy = start_proxy(RUNAWAY_REQUESTS_PER_MINUTE="5", RUNAWAY_ACTION="refuse", SLACK_WEBHOOK_URL=slack.webhook())
    assert [in_session(proxy, "loop-1").status_code for _ in range(5)] == [200] * 5

    refused = in_session(proxy, "loop-1")

    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert message.startswith("Session loop-1 sent 5 requests in the last minute (the guard's threshold is 5)")
    assert "runaway guard" in message
    assert refused.headers["x-nexus-ratelimit-scope"] == "session"
    assert in_session(proxy, "calm-2").status_code == 200, "other sessions go on"
    assert in_session(proxy, "loop-1", **{"x-claude-code-agent-id": "agent-a"}).status_code == 200, "its sub-agents too"
    alerts = [m for m in slack.wait_for(1) if "Runaway session" in json.dumps(m)]
    assert alerts, slack.received()
    assert "Session loop-1 refused" in json.dumps(alerts[0])


def test_a_runaway_session_is_slowed_to_the_threshold_pace(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(RUNAWAY_REQUESTS_PER_MINUTE="30")  # slow: one request every 2 s once over
    assert {in_session(proxy, "loop-3").status_code for _ in range(30)} == {200}

    started = time.monotonic()
    held = in_session(proxy, "loop-3")
    waited = time.monotonic() - started

    assert held.status_code == 200, "slowed, not refused"
    assert waited >= 1.9, waited
    started = time.monotonic()
    assert in_session(proxy, "other-4").status_code == 200
    assert time.monotonic() - started < 1.9, "another session is not held"


def test_a_session_burning_its_share_of_the_window_is_refused(
    start_proxy: Callable[..., RunningProxy], credentials_dir: Path
) -> None:
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "api_key", "api_key": DEFAULT_API_KEY, "limits": {"five_hour_output_tokens": 1000}})
    )
    proxy = start_proxy(RUNAWAY_WINDOW_PERCENT="1", RUNAWAY_ACTION="refuse")  # 10 output tokens
    assert in_session(proxy, "burner").status_code == 200
    time.sleep(0.2)  # its usage is counted once answered

    refused = in_session(proxy, "burner")

    assert refused.status_code == 429
    assert (
        "output tokens in 5 minutes, over 1% of the account's 5-hour window (1,000)"
        in refused.json()["error"]["message"]
    )
    assert refused.headers["x-nexus-ratelimit-measure"] == "tokens"
