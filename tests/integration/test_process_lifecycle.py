"""Shutdown, workers and logs of the ``claude-nexus-proxy`` process, as operators see them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from nexus.entrypoints.http.app import create_app
from nexus.entrypoints.settings import load_settings
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.processes import ProxyProcess

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "stream": True}
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


def start(fake: FakeAnthropic, tmp_path: Path, *args: str, **env: str) -> ProxyProcess:
    return ProxyProcess(cwd=tmp_path, env={"CLAUDE_API_BASE_URL": fake.url, **env}, args=args).wait_ready()


def test_sigterm_lets_a_stream_in_flight_finish_then_exits_0(fake: FakeAnthropic, tmp_path: Path) -> None:
    proxy = start(fake, tmp_path)
    received = b""
    with httpx.stream(
        "POST", f"{proxy.url}/v1/messages", json=BODY, headers={**HEADERS, SCENARIO_HEADER: "slow:100"}
    ) as response:
        chunks = response.iter_raw()
        received += next(chunks)
        proxy.signal(signal.SIGTERM)
        for chunk in chunks:
            received += chunk
    assert received.rstrip().endswith(b'data: {"type":"message_stop"}')
    assert proxy.wait_exit(10) == 0
    output = proxy.stop()
    assert "readiness is now false" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{proxy.url}/health/live")


def test_the_drain_is_bounded(fake: FakeAnthropic, tmp_path: Path) -> None:
    proxy = start(fake, tmp_path, SHUTDOWN_DRAIN_SECONDS="0.3")
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST", f"{proxy.url}/v1/messages", json=BODY, headers={**HEADERS, SCENARIO_HEADER: "slow:400"}
        ) as response,
    ):
        chunks = response.iter_raw()
        next(chunks)
        proxy.signal(signal.SIGTERM)
        for _ in chunks:
            pass
    assert proxy.wait_exit(10) == 0


def test_workers_share_one_port(fake: FakeAnthropic, tmp_path: Path) -> None:
    proxy = start(fake, tmp_path, "--workers", "2")
    try:
        children = [
            child
            for child in Path(f"/proc/{proxy.pid}/task/{proxy.pid}/children").read_text().split()
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()  # not multiprocessing's tracker
        ]
        assert len(children) == 2
        pids = set()
        for _ in range(20):
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(f"{proxy.url}/health").json()["pid"])
                response = client.post(f"{proxy.url}/v1/messages", json={**BODY, "stream": False}, headers=HEADERS)
                assert response.status_code == 200
        assert pids <= {int(child) for child in children}
        proxy.signal(signal.SIGTERM)
        assert proxy.wait_exit(15) == 0
    finally:
        proxy.stop()
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()


def test_logs_are_json_lines_carrying_the_request_id_and_no_secret(fake: FakeAnthropic, tmp_path: Path) -> None:
    proxy = start(fake, tmp_path, DEBUG="true", CLAUDE_API_KEY="sk-ant-api03-the-proxy-key")
    try:
        ok = httpx.post(
            f"{proxy.url}/v1/messages",
            json={**BODY, "stream": False},
            headers={**HEADERS, "authorization": "Bearer sk-ant-oat01-client-secret"},
        )
        failed = httpx.post(
            f"{proxy.url}/v1/messages",
            json={**BODY, "stream": False},
            headers={**HEADERS, SCENARIO_HEADER: "disconnect"},
        )
    finally:
        output = proxy.stop()
    assert ok.status_code == 200
    assert failed.status_code == 502
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= record.keys() for record in records)
    ok_id = ok.headers["x-request-id"]
    request_logs = [record for record in records if record.get("request_id") == ok_id]
    assert [record["message"].split()[0] for record in request_logs] == ["request", "response"]
    headers = dict(request_logs[0]["headers"])
    assert headers["authorization"] == "Bearer ********"
    assert headers["x-api-key"] == "********"
    assert request_logs[1]["status"] == 200
    failed_logs = [record for record in records if record.get("request_id") == failed.headers["x-request-id"]]
    assert any(record["level"] == "WARNING" and "Upstream" in record["message"] for record in failed_logs)
    for secret in ("sk-ant-oat01-client-secret", DEFAULT_API_KEY, "sk-ant-api03-the-proxy-key"):
        assert secret not in output


async def test_readiness_turns_false_while_draining() -> None:
    app = create_app(load_settings({}))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health/ready")).status_code == 200
        app.state.container.lifecycle().start_draining()
        not_ready = await client.get("/health/ready")
        assert (not_ready.status_code, not_ready.json()) == (503, {"ready": False, "reason": "shutting down"})
        assert (await client.get("/health")).json()["draining"] is True
        assert (await client.get("/health/live")).status_code == 200
