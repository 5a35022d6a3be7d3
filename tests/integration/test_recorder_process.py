"""The recorder process (ADR 20): a child of each worker stores and links; nothing is lost
when it dies, stalls or falls behind, and the proxy can do without it."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.integration.test_kill_nine import InsertStall, Traffic, stall, stored_ids  # noqa: F401 -- a fixture
from tests.support.database import query
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "hi"}]


def recorder_process(proxy: RunningProxy) -> dict[str, object]:
    detail = httpx.get(f"{proxy.url}/health").json()["checks"]["database"]["recorder_process"]
    assert isinstance(detail, dict)
    return detail


def alive(pid: object) -> bool:
    return isinstance(pid, int) and Path(f"/proc/{pid}").exists()


def test_a_killed_recorder_process_is_started_again_and_sent_what_it_had_not_stored(
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    stall: InsertStall,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    first = recorder_process(proxy)["pid"]
    assert alive(first)
    with Traffic(proxy.url, threads=4) as traffic:
        wait_for(lambda: len(traffic.completed) >= 10, timeout=20)
        stall.start()  # the child's inserts wait: exchanges pile up unacknowledged
        before = len(traffic.completed)
        wait_for(lambda: len(traffic.completed) >= before + 20, timeout=20)
        assert int(recorder_process(proxy)["unacknowledged"]) >= 10  # type: ignore[call-overload]
        os.kill(first, signal.SIGKILL)  # type: ignore[arg-type]
        wait_for(lambda: recorder_process(proxy)["restarts"] == 1 and alive(recorder_process(proxy)["pid"]))
        stall.release()
        after = len(traffic.completed)
        wait_for(lambda: len(traffic.completed) >= after + 10, timeout=20)
    assert traffic.broken == 0, "the clients never notice"
    wait_for(lambda: set(traffic.completed) <= set(stored_ids(database_url)), timeout=20)
    stored = stored_ids(database_url)
    assert [request_id for request_id, count in stored.items() if count > 1] == [], "stored once each"
    assert recorder_process(proxy)["pid"] != first
    wait_for(lambda: recorder_process(proxy)["unacknowledged"] == 0)
    assert any("The recorder process exited" in record.getMessage() for record in caplog.records)


def test_past_its_queue_bytes_the_proxy_journals_until_the_recorder_catches_up(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    # A few exchanges' worth: a stalled child soon has more than that unacknowledged.
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(data), RECORDER_QUEUE_BYTES="20000")
    client = sdk(proxy.url)
    client.messages.create(model="claude-sonnet-5", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
    wait_for(lambda: len(stored_ids(database_url)) == 1)
    child = recorder_process(proxy)["pid"]
    assert isinstance(child, int)
    os.kill(child, signal.SIGSTOP)
    try:
        ids = [
            client.messages.with_raw_response.create(
                model="claude-sonnet-5",
                max_tokens=16,
                messages=[{"role": "user", "content": f"turn {n}"}],
            ).headers["x-request-id"]
            for n in range(30)
        ]
        health = httpx.get(f"{proxy.url}/health").json()["checks"]["database"]
        assert health["journaled"] >= 10, "past the bound, exchanges wait in the proxy's journal"
        assert list((data / "journal").glob("*.journal"))
    finally:
        os.kill(child, signal.SIGCONT)
    wait_for(lambda: set(ids) <= set(stored_ids(database_url)), timeout=20)
    assert all(count == 1 for count in stored_ids(database_url).values())
    wait_for(lambda: not list((data / "journal").glob("*.journal")), timeout=10)
    assert recorder_process(proxy)["restarts"] == 0


def test_the_recorder_process_logs_through_the_proxy_and_ends_with_it(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    child = recorder_process(proxy)["pid"]
    sdk(proxy.url).messages.create(model="claude-sonnet-5", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
    wait_for(lambda: len(stored_ids(database_url)) == 1)
    proxy.__exit__(None, None, None)
    assert not alive(child), "the child does not outlive the proxy"
    stopped = [record for record in caplog.records if record.getMessage().startswith("Recorder stopped")]
    assert [record.name for record in stopped] == ["nexus.adapters.persistence.recording"]
    assert "1 exchanges stored" in stopped[0].getMessage()


def test_without_the_recorder_process_the_proxy_records_and_links_on_its_own_loop(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), RECORDER_PROCESS="false")
    assert "recorder_process" not in httpx.get(f"{proxy.url}/health").json()["checks"]["database"]
    client = sdk(proxy.url)
    turns: list[dict[str, object]] = [{"role": "user", "content": "Name three rivers"}]
    reply = client.messages.create(model="claude-sonnet-5", max_tokens=16, messages=turns)  # type: ignore[arg-type]
    turns += [{"role": "assistant", "content": reply.content[0].text}, {"role": "user", "content": "And lakes?"}]  # type: ignore[union-attr]
    client.messages.create(model="claude-sonnet-5", max_tokens=16, messages=turns)  # type: ignore[arg-type]
    linked = "SELECT conversation_id FROM exchanges WHERE conversation_id IS NOT NULL AND NOT link_pending"
    wait_for(lambda: len(query(database_url, linked)) == 2)
    assert len({row["conversation_id"] for row in query(database_url, linked)}) == 1
