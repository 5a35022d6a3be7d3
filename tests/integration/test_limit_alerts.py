"""Alerts before a limit: Anthropic's five-hour window, an operator's limits and a domain's daily
budget, sent once per threshold to a real Slack receiver, logged, and listed on the dashboard."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.limit_alerts import SqlAlchemyAlertLedger
from nexus.adapters.persistence.migrate import upgrade
from nexus.domain.limit_alerts import LimitAlert
from tests.integration.test_api_usage import oauth_credential, write_credential
from tests.support.dashboard import sign_in
from tests.support.database import query, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy
from tests.support.slack_receiver import SlackReceiver

pytestmark = pytest.mark.integration

TOKEN = "sk-ant-oat01-limit-alerts"
KEY = "dashboard-key-for-alert-tests"
BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]}
SESSION = "0f4e6a5b-1c2d-4e3f-8a9b-0c1d2e3f4a5b"


def start(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, slack: SlackReceiver, **more: str
) -> RunningProxy:
    return start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        SLACK_WEBHOOK_URL=slack.webhook(),
        ALERT_CHECK_SECONDS="0.2",
        DASHBOARD_API_KEY=KEY,
        **more,
    )


def send(proxy: RunningProxy, host: str, *, oauth: bool = False) -> None:
    headers = {"host": host, "anthropic-version": "2023-06-01", "x-claude-code-session-id": SESSION}
    if not oauth:
        headers["x-api-key"] = DEFAULT_API_KEY
    response = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def alerts(slack: SlackReceiver) -> list[str]:
    return [
        message["text"] for message in slack.received() if "reached" in message["text"] or "reports" in message["text"]
    ]


def settle(slack: SlackReceiver, count: int) -> list[str]:
    """The alerts once ``count`` have arrived, and after a moment in which no more came."""
    deadline = time.monotonic() + 10
    while len(alerts(slack)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.8)  # several checks later: nothing else is due
    return alerts(slack)


def blocks_text(message: dict[str, Any]) -> str:
    parts = []
    for block in message["blocks"]:
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        else:
            parts.extend(element["text"] for element in block["elements"])
    return "\n".join(parts)


def test_anthropic_five_hour_window_alerts_once_per_threshold_naming_the_biggest_conversations(
    *,
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    credentials_dir: Path,
    slack: SlackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.oauth_tokens[TOKEN] = float("inf")
    write_credential(credentials_dir, "team.example", oauth_credential("acc_team", TOKEN))
    proxy = start(start_proxy, database_url, tmp_path, slack)
    with caplog.at_level(logging.WARNING, logger="nexus.application.notifications.limit_watch"):
        fake.unified_utilization = "0.50"
        send(proxy, "team.example", oauth=True)
        wait_for_rows(database_url, 1)
        assert settle(slack, 0) == [], "50 % crosses no threshold"

        fake.unified_utilization = "0.85"
        for _ in range(3):
            send(proxy, "team.example", oauth=True)
        first = settle(slack, 1)
        assert len(first) == 1, first
        assert "account acc_team (team.example) reached 80 % of its Anthropic five-hour window: 85 % used" in first[0]
        assert first[0].endswith("resets 2026-10-01T00:30Z"), "the window Anthropic named"

        fake.unified_utilization = "0.97"
        send(proxy, "team.example", oauth=True)
        send(proxy, "team.example", oauth=True)
        later = settle(slack, 2)
    assert len(later) == 2, later
    assert "reached 90 % of its Anthropic five-hour window: 97 % used" in later[1]
    message = slack.received()[-1]
    text = blocks_text(message)
    assert "Most tokens in this window" in text
    assert re.search(r"(session|conversation) .*: [\d,]+ tokens, \d+ requests", text), text
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Limit alert:")]
    assert len(logged) == 2
    assert "Most tokens:" in logged[1]
    assert DEFAULT_API_KEY not in text
    assert TOKEN not in text

    rows = query(database_url, "SELECT key, threshold FROM limit_alerts ORDER BY threshold")
    assert [row["threshold"] for row in rows] == [80, 90]

    dashboard = sign_in(proxy.url, KEY)
    page = dashboard.get("/dashboard/usage")
    assert page.status_code == 200
    assert "Limit alerts, last 24 hours" in page.text
    assert "reached 90 % of its Anthropic five-hour window" in page.text


def test_an_anthropic_warning_status_is_alerted_once(
    *,
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    credentials_dir: Path,
    slack: SlackReceiver,
) -> None:
    fake.oauth_tokens[TOKEN] = float("inf")
    write_credential(credentials_dir, "team.example", oauth_credential("acc_team", TOKEN))
    proxy = start(start_proxy, database_url, tmp_path, slack)
    fake.unified_status = "allowed_warning"
    for _ in range(3):
        send(proxy, "team.example", oauth=True)
    found = settle(slack, 1)
    assert len(found) == 1, found
    assert found[0].startswith("Anthropic reports account acc_team (team.example) as allowed_warning")


def test_two_workers_sharing_the_database_send_each_alert_once(
    *,
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    credentials_dir: Path,
    slack: SlackReceiver,
) -> None:
    """An operator's 5-hour output-token limit, passed while two proxies serve the account."""
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": DEFAULT_API_KEY})
    first = start(start_proxy, database_url, tmp_path, slack)
    second = start(start_proxy, database_url, tmp_path / "second", slack)
    sent = 0
    while sum(row["output_tokens"] or 0 for row in wait_for_rows(database_url, sent)) < 100:
        for proxy in (first, second):
            send(proxy, "team.example")
            sent += 1
    assert settle(slack, 0) == [], "no limit set yet"
    # The limit appears (an operator edits the file); both workers see the next traffic.
    limits = {"five_hour_output_tokens": 100}
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": DEFAULT_API_KEY, "limits": limits})
    for proxy in (first, second):
        send(proxy, "team.example")
    found = settle(slack, 1)
    assert len(found) == 1, found
    assert "account team.example reached 100 % of its 5 h output tokens" in found[0]
    thresholds = [row["threshold"] for row in query(database_url, "SELECT threshold FROM limit_alerts ORDER BY 1")]
    assert thresholds == [80, 90, 100], "every threshold passed is claimed, one message says the highest"

    for proxy in (first, second):
        send(proxy, "team.example")
    assert len(settle(slack, 2)) == 1, "still over the limit: nothing new to say"


def test_a_domains_daily_budget_is_alerted_by_name(
    *,
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    credentials_dir: Path,
    slack: SlackReceiver,
) -> None:
    write_credential(
        credentials_dir,
        "ci.example",
        {"type": "api_key", "api_key": DEFAULT_API_KEY, "limits": {"daily_usd": 0.00001}},
    )
    proxy = start(start_proxy, database_url, tmp_path, slack, ALERT_THRESHOLDS="100")
    send(proxy, "ci.example")
    found = settle(slack, 1)
    assert len(found) == 1, found
    assert "account ci.example (ci.example) reached 100 % of its daily budget" in found[0]
    assert re.search(r"% used \(\$0\.\d+ of \$0\.00001\)$", found[0]), found[0]


def test_the_claim_is_won_by_one_of_two_concurrent_workers(database_url: str) -> None:
    alert = LimitAlert(
        measure="limit",
        account_id="acc",
        domain=None,
        name="5 h cost",
        threshold=90,
        percent=91.0,
        used=None,
        limit=None,
    )

    async def race() -> tuple[list[str], list[str], list[str]]:
        async with open_engine(database_url) as engine:
            await upgrade(engine)
            ledgers = [SqlAlchemyAlertLedger(engine), SqlAlchemyAlertLedger(engine)]
            now = datetime.now(UTC)
            keys: dict[str, int | None] = {"limit|acc|five_hour_cost_usd|90": 90}
            one, two = await asyncio.gather(*(ledger.claim(alert, keys, quiet_s=3600, now=now) for ledger in ledgers))
            again = await ledgers[0].claim(alert, keys, quiet_s=3600, now=now)
            return one, two, again

    one, two, again = asyncio.run(race())
    assert sorted([len(one), len(two)]) == [0, 1]
    assert again == []


def test_without_storage_anthropics_window_is_still_watched(
    *,
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    tmp_path: Path,
    credentials_dir: Path,
    slack: SlackReceiver,
) -> None:
    fake.oauth_tokens[TOKEN] = float("inf")
    limits = {"five_hour_output_tokens": 1}  # cannot be summed without storage: no alert, no error
    write_credential(credentials_dir, "team.example", oauth_credential("acc_team", TOKEN, limits=limits))
    proxy = start_proxy(
        STORAGE_ENABLED="false",
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        SLACK_WEBHOOK_URL=slack.webhook(),
        ALERT_CHECK_SECONDS="0.2",
    )
    fake.unified_utilization = "0.91"
    for _ in range(2):
        send(proxy, "team.example", oauth=True)
    found = settle(slack, 1)
    assert found == [
        "account acc_team (team.example) reached 90 % of its Anthropic five-hour window: 91 % used, "
        "resets 2026-10-01T00:30Z"
    ]
