"""PostgreSQL goes away mid-traffic: clients notice nothing, and nothing is lost or doubled."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.claude_code_session import Agent
from tests.support.database import query, stop_postgres, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


def send(proxy: RunningProxy, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS)
        assert response.status_code == 200
        ids.append(response.headers["x-request-id"])
    return ids


def test_every_exchange_is_stored_exactly_once_across_an_outage(
    fake: FakeAnthropic, own_postgres: Any, start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    url = own_postgres.get_uri()
    data_dir = tmp_path / "data"
    proxy = start_proxy(DATABASE_URL=url, NEXUS_DATA_DIR=str(data_dir))
    before = send(proxy, 10)
    assert len(wait_for_rows(url, 10)) == 10

    stop_postgres(own_postgres)
    during = send(proxy, 25)  # the database is gone; clients must not notice
    journal = data_dir / "journal"
    assert any(journal.glob("*")), "exchanges waiting for the database are on disk"
    health = httpx.get(f"{proxy.url}/health")
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["status"] == "failing"
    assert health.json()["checks"]["database"]["journaled"] >= 1
    assert httpx.get(f"{proxy.url}/health/ready").status_code == 200, "still takes traffic"

    own_postgres.ensure_postgres_running()
    after = send(proxy, 5)
    rows = wait_for_rows(url, 40, timeout=40)
    assert httpx.get(f"{proxy.url}/health").json()["checks"]["database"]["status"] == "ok"
    stored = [str(row["id"]) for row in rows]
    assert sorted(stored) == sorted(before + during + after)
    assert query(url, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM exchanges") == [{"n": 40, "d": 40}]


def test_exchanges_journaled_when_the_proxy_stops_are_stored_at_the_next_start(
    fake: FakeAnthropic, own_postgres: Any, tmp_path: Path
) -> None:
    url = own_postgres.get_uri()
    data_dir = tmp_path / "data"
    with RunningProxy(CLAUDE_API_BASE_URL=fake.url, DATABASE_URL=url, NEXUS_DATA_DIR=str(data_dir)) as proxy:
        assert len(wait_for_rows(url, len(send(proxy, 3)))) == 3
        stop_postgres(own_postgres)
        during = send(proxy, 7)
    # Stopped while the database was away: the queue went to the journal.
    assert any((data_dir / "journal").glob("*"))
    own_postgres.ensure_postgres_running()
    with RunningProxy(CLAUDE_API_BASE_URL=fake.url, DATABASE_URL=url, NEXUS_DATA_DIR=str(data_dir)):
        rows = wait_for_rows(url, 10, timeout=20)
    assert set(during) <= {str(row["id"]) for row in rows}
    assert len(rows) == 10
    assert not any((data_dir / "journal").glob("*")), "replayed segments are removed"


def test_a_conversation_going_on_through_an_outage_is_linked_once_the_database_returns(
    fake: FakeAnthropic, own_postgres: Any, start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    url = own_postgres.get_uri()
    proxy = start_proxy(DATABASE_URL=url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    main = Agent(sdk(proxy.url), session_id=str(uuid.uuid4()))
    main.say("First question.")
    main.say("Second question.")
    assert len(wait_for_rows(url, 2)) == 2

    stop_postgres(own_postgres)
    main.say("Asked while the database is away.")
    main.say("And another.")
    own_postgres.ensure_postgres_running()
    main.say("Back again.")

    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        rows = query(url, "SELECT * FROM exchanges WHERE NOT link_pending AND conversation_id IS NOT NULL ORDER BY ts")
        if len(rows) == 5:
            break
        time.sleep(0.1)
    assert [str(row["id"]) for row in rows] == main.request_ids
    assert [row["parent_request_id"] for row in rows] == [None, *(row["id"] for row in rows[:-1])]
    assert {row["conversation_id"] for row in rows} == {rows[0]["id"]}
