"""SIGKILL mid-traffic: every exchange its client saw complete is stored, once, after a restart."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.integration.conftest import sdk
from tests.support.database import InsertStall, query
from tests.support.fake_anthropic import SCENARIO_HEADER, FakeAnthropic
from tests.support.processes import ProxyProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "hi"}]


class Traffic:
    """Client threads sending streams and plain requests until told to stop; each keeps the
    proxy's request id of every answer it got whole."""

    def __init__(self, url: str, threads: int = 6) -> None:
        self.completed: list[str] = []
        self.broken = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(url, n), daemon=True) for n in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, url: str, n: int) -> None:
        client = sdk(url, timeout=10)
        while not self._stop.is_set():
            try:
                request_id = self._stream(client) if n % 2 else self._plain(client)
            except Exception:  # the kill cuts connections: whatever the transport raises
                with self._lock:
                    self.broken += 1
                time.sleep(0.05)  # the proxy is gone: wait for the restart
                continue
            with self._lock:
                self.completed.append(request_id)

    @staticmethod
    def _plain(client: anthropic.Anthropic) -> str:
        raw = client.messages.with_raw_response.create(model="claude-sonnet-5", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
        assert raw.parse().content
        return raw.headers["x-request-id"]

    @staticmethod
    def _stream(client: anthropic.Anthropic) -> str:
        with client.messages.stream(
            model="claude-sonnet-5",
            max_tokens=16,
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={SCENARIO_HEADER: "slow:5"},
        ) as stream:
            message = stream.get_final_message()  # raises unless the stream ended with message_stop
            assert message.stop_reason
            return stream.response.headers["x-request-id"]


@pytest.fixture
def stall(database_url: str) -> Iterator[InsertStall]:
    stall = InsertStall(database_url)
    yield stall
    stall.release()


def stored_ids(url: str) -> dict[str, int]:
    return {
        row["id"]: row["n"] for row in query(url, "SELECT id::text AS id, count(*) AS n FROM exchanges GROUP BY id")
    }


def test_sigkill_mid_traffic_loses_no_exchange_a_client_saw_complete(
    fake: FakeAnthropic, database_url: str, tmp_path: Path, stall: InsertStall
) -> None:
    env = {"CLAUDE_API_BASE_URL": fake.url, "DATABASE_URL": database_url, "STORAGE_ENABLED": "true"}
    proxy = ProxyProcess(cwd=tmp_path, env=env).wait_ready()
    with Traffic(proxy.url) as traffic:
        wait_for(lambda: len(traffic.completed) >= 20, timeout=20)
        stall.start()
        done_before = len(traffic.completed)
        wait_for(lambda: len(traffic.completed) >= done_before + 40, timeout=20)
        proxy.signal(signal.SIGKILL)
        assert proxy.wait_exit(10) == -signal.SIGKILL
        completed = list(traffic.completed)
        unstored = set(completed) - set(stored_ids(database_url))
        assert len(unstored) >= 40, "the kill must find exchanges answered and not yet stored"
        stall.release()
        restarted = ProxyProcess(cwd=tmp_path, env=env, port=proxy.port).wait_ready()
        after_restart = len(traffic.completed)
        wait_for(lambda: len(traffic.completed) >= after_restart + 10, timeout=20)
    try:
        wait_for(lambda: set(traffic.completed) <= set(stored_ids(database_url)), timeout=20)
        stored = stored_ids(database_url)
        assert [request_id for request_id, count in stored.items() if count > 1] == []
        assert set(traffic.completed) <= set(stored)
        assert len(completed) >= 60
        assert not list((tmp_path / ".nexus" / "journal").glob("*.journal")), "replayed and removed"
    finally:
        output = restarted.stop()
    assert "Replayed" in output
