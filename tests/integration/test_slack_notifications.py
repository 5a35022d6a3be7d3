"""Slack messages for the team's traffic, sent to a real webhook receiver on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.claude_code_session import MAIN_SYSTEM
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.processes import run_cli
from tests.support.proxy_server import RunningProxy
from tests.support.slack_receiver import Answer, SlackReceiver

pytestmark = pytest.mark.integration


def turn(text: str | list[dict[str, Any]], *, history: list[dict[str, Any]] | None = None) -> bytes:
    messages = [*(history or []), {"role": "user", "content": text}]
    return json.dumps(
        {"model": "claude-sonnet-5", "max_tokens": 64, "system": MAIN_SYSTEM, "messages": messages}
    ).encode()


def send(proxy: RunningProxy, body: bytes, *, host: str | None = None, scenario: str | None = None) -> httpx.Response:
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    if host:
        headers["host"] = host
    if scenario:
        headers[SCENARIO_HEADER] = scenario
    return httpx.post(f"{proxy.url}/v1/messages", content=body, headers=headers, timeout=30)


def texts(message: dict[str, Any]) -> str:
    """Every mrkdwn text of a Block Kit message, joined."""
    found = []
    for block in message["blocks"]:
        if block["type"] == "section":
            found.append(block["text"]["text"])
        else:
            found.extend(element["text"] for element in block["elements"])
    return "\n".join(found)


def health(proxy: RunningProxy) -> dict[str, Any]:
    checks: dict[str, Any] = httpx.get(f"{proxy.url}/health").json()["checks"]
    return dict(checks["notifications"])


def eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_new_user_turn_is_posted_once_with_the_reply_tools_and_a_footer_without_secrets(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver
) -> None:
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), SLACK_CHANNEL="#claude", STORAGE_ENABLED="false")
    asked = "Read the config <!channel> & tell me <@U123> what's in it"
    first = send(proxy, turn(asked), scenario="tool_use")
    assert first.status_code == 200
    tool_id = next(block["id"] for block in first.json()["content"] if block["type"] == "tool_use")
    history = [
        {"role": "user", "content": asked},
        {"role": "assistant", "content": first.json()["content"]},
    ]
    # The tool turn repeats the user's words: no second message for it.
    tool_turn = turn([{"type": "tool_result", "tool_use_id": tool_id, "content": "port = 3000"}], history=history)
    assert send(proxy, tool_turn).status_code == 200
    assert send(proxy, turn("quota")).status_code == 200  # not inference: never posted

    [message] = slack.wait_for(1)
    time.sleep(0.5)  # room for a wrong second message to arrive
    assert len(slack.received()) == 1
    assert (message["channel"], message["username"], message["icon_emoji"]) == (
        "#claude",
        "Claude Nexus Proxy",
        ":robot_face:",
    )
    said = texts(message)
    assert "&lt;!channel&gt; &amp; tell me &lt;@U123&gt;" in said, "prompt text is data, never a mention"
    assert "<!channel>" not in json.dumps(message)
    assert "<@U123>" not in json.dumps(message)
    assert "*Tools:* Read" in said
    assert "*Claude:* I'll read the config" in said
    assert first.headers["x-request-id"] in said
    assert "claude-sonnet-5" in said
    assert DEFAULT_API_KEY not in json.dumps(message)
    assert "…" + DEFAULT_API_KEY[-4:] in said, "the key is hinted at by its last four characters"
    counters = health(proxy)
    assert (counters["slack"], counters["sent"], counters["failed"], counters["dropped"]) == ("on", 1, 0, 0)


def test_a_long_reply_is_cut_to_twenty_lines(start_proxy: Callable[..., RunningProxy], slack: SlackReceiver) -> None:
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), STORAGE_ENABLED="false")
    lines = "\n".join(f"line {n}" for n in range(40))
    assert send(proxy, turn(lines)).status_code == 200
    [message] = slack.wait_for(1)
    reply = next(b["text"]["text"] for b in message["blocks"] if b["text"]["text"].startswith("*Claude:*"))
    assert len(reply) <= 3000
    assert all(len(block["text"]["text"]) <= 3000 for block in message["blocks"] if block["type"] == "section")


def test_errors_are_posted_once_a_minute_per_kind_and_domain(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver
) -> None:
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), STORAGE_ENABLED="false", UPSTREAM_MAX_RETRIES="0")
    for n in range(4):
        assert send(proxy, turn(f"try {n}"), scenario="error:529").status_code == 529
    assert send(proxy, b"{not json").status_code == 400  # a proxy rejection: another kind
    messages = slack.wait_for(2)
    assert eventually(lambda: health(proxy)["suppressed"] == 3)
    assert len(slack.received()) == 2
    upstream, rejected = sorted(messages, key=lambda m: "rejected" in texts(m))
    assert "Upstream error" in texts(upstream)
    assert "529" in texts(upstream)
    assert "overloaded_error" in texts(upstream)
    assert "Request rejected by the proxy" in texts(rejected)


def test_a_domain_file_overrides_the_global_target_or_silences_the_domain(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver, credentials_dir: Path
) -> None:
    (credentials_dir / "team-a.example.com.credentials.json").write_text(
        json.dumps(
            {
                "type": "api_key",
                "api_key": DEFAULT_API_KEY,
                "slack": {"webhook_url": slack.webhook("TA/BA/team-a"), "channel": "#team-a"},
            }
        )
    )
    (credentials_dir / "quiet.example.com.credentials.json").write_text(
        json.dumps({"type": "api_key", "api_key": DEFAULT_API_KEY, "slack": {"enabled": False}})
    )
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), STORAGE_ENABLED="false")
    assert send(proxy, turn("from team a"), host="team-a.example.com").status_code == 200
    assert send(proxy, turn("from quiet"), host="quiet.example.com").status_code == 200
    assert send(proxy, turn("from elsewhere"), host="other.example.com").status_code == 200

    [team_a] = slack.wait_for(1, "TA/BA/team-a")
    assert team_a["channel"] == "#team-a"
    assert team_a["username"] == "Claude Nexus Proxy", "what the block leaves out comes from the global settings"
    [other] = slack.wait_for(1)
    assert "other.example.com" in texts(other)
    time.sleep(0.5)
    assert not any("from quiet" in texts(m) for m in slack.received() + slack.received("TA/BA/team-a"))


def test_slack_rate_limits_are_waited_out_and_a_dead_receiver_never_touches_traffic(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver, fake: FakeAnthropic
) -> None:
    slack.script["/services/T000/B000/global"] = [Answer(429, retry_after="1")]
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), STORAGE_ENABLED="false")
    assert send(proxy, turn("rate limited first")).status_code == 200
    [message] = slack.wait_for(1)
    first, second = slack.attempts["/services/T000/B000/global"][:2]
    assert second - first >= 0.9, "retry-after was honoured"
    assert "rate limited first" in texts(message)

    dead = start_proxy(SLACK_WEBHOOK_URL="http://127.0.0.1:9/services/nobody", STORAGE_ENABLED="false")
    started = time.monotonic()
    answers = [send(dead, turn(f"no slack {n}")) for n in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert time.monotonic() - started < 5, "delivery happens off the request path"
    assert eventually(lambda: health(dead)["failed"] == 3, timeout=20)
    assert httpx.get(f"{dead.url}/health").status_code == 200


def test_a_slow_receiver_times_out_after_five_seconds_without_holding_requests(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver
) -> None:
    slack.script["/services/T000/B000/global"] = [Answer(delay_s=8)] * 3
    proxy = start_proxy(SLACK_WEBHOOK_URL=slack.webhook(), STORAGE_ENABLED="false")
    started = time.monotonic()
    assert send(proxy, turn("slow slack")).status_code == 200
    assert send(proxy, turn("slow slack again")).status_code == 200
    assert time.monotonic() - started < 3
    assert eventually(lambda: health(proxy)["failed"] >= 1, timeout=30)


def test_a_webhook_that_is_not_https_is_refused_at_start(tmp_path: Path) -> None:
    result = run_cli(
        "credentials", "list", cwd=tmp_path, env={"SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/x"}
    )
    assert result.returncode == 2
    assert "SLACK_WEBHOOK_URL: must be an https:// URL" in result.stderr
    assert "hooks.slack.com/services/x" not in result.stderr


def test_an_open_circuit_and_a_recorder_without_its_database_are_posted(
    start_proxy: Callable[..., RunningProxy], slack: SlackReceiver, tmp_path: Path
) -> None:
    proxy = start_proxy(
        SLACK_WEBHOOK_URL=slack.webhook(),
        CIRCUIT_BREAKER_FAILURES="2",
        UPSTREAM_MAX_RETRIES="0",
        DATABASE_URL="postgresql://nexus@127.0.0.1:9/nexus",
        NEXUS_DATA_DIR=str(tmp_path / "data"),
    )
    statuses = [send(proxy, turn(f"down {n}"), scenario="error:529").status_code for n in range(3)]
    assert statuses == [529, 529, 503], "the third finds the circuit open"

    def said() -> str:
        return "\n".join(texts(message) for message in slack.received())

    assert eventually(lambda: "Circuit open: upstream is failing" in said() and "Recording trouble" in said())
    assert "after 2 failures in a row" in said()
    assert "Connection refused" in said(), "the first of the recorder's troubles (the rest held back a minute)"
    assert "nexus@127.0.0.1:9" not in said(), "no database URL reaches Slack"
