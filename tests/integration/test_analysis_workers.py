"""Analysis workers as separate processes (``claude-nexus-proxy worker``) sharing one database:
two never process a job twice, and a worker killed mid-job loses it only for the job timeout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.test_analysis import AUTH, KEY, conversation, finished, request
from tests.support.fake_gemini import API_KEY, Answer, FakeGemini
from tests.support.processes import WorkerProcess, run_cli
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def queueing(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    """A proxy that takes analysis requests but runs no worker."""
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def worker_env(database_url: str, gemini: FakeGemini, **extra: str) -> dict[str, str]:
    return {
        "STORAGE_ENABLED": "true",
        "DATABASE_URL": database_url,
        "GEMINI_API_KEY": API_KEY,
        "GEMINI_API_URL": f"{gemini.url}/v1beta/models",
        "AI_WORKER_POLL_INTERVAL_MS": "100",
        "LOG_FORMAT": "text",
        **extra,
    }


def test_two_workers_share_the_jobs_and_never_process_one_twice(
    queueing: RunningProxy, gemini: FakeGemini, database_url: str, tmp_path: Path
) -> None:
    topics = [f"Topic number {n}" for n in range(6)]
    conversations = [conversation(queueing, topic) for topic in topics]
    for conversation_id in conversations:
        assert request(queueing, conversation_id).status_code == 201
    gemini.script = [Answer("slow", delay_s=1.5)] * 6  # long enough for both workers to hold jobs
    env = worker_env(database_url, gemini)
    workers = [WorkerProcess(cwd=tmp_path, env=env) for _ in range(2)]
    try:
        results = [finished(queueing, conversation_id, timeout=60) for conversation_id in conversations]
    finally:
        outputs = [worker.stop() for worker in workers]

    assert [result["status"] for result in results] == ["completed"] * 6, results
    assert all(result["attempts"] == 1 for result in results)
    sent = [json.dumps(request["body"]) for request in gemini.received()]
    assert len(sent) == 6, "one model call per job"
    for topic in topics:
        assert sum(topic in body for body in sent) == 1, topic
    for output in outputs:
        assert "Analysis worker started" in output
        assert "done by" in output, f"both workers took jobs:\n{output}"


def test_a_worker_killed_mid_job_leaves_it_to_the_watchdog(
    queueing: RunningProxy, gemini: FakeGemini, database_url: str, tmp_path: Path
) -> None:
    conversation_id = conversation(queueing, "Analyse me even if a worker dies")
    assert request(queueing, conversation_id).status_code == 201
    gemini.script = [Answer("slow", delay_s=60)]
    env = worker_env(database_url, gemini, AI_WORKER_JOB_TIMEOUT_MINUTES="0.03")  # about 2 s
    doomed = WorkerProcess(cwd=tmp_path, env=env)
    wait_for(lambda: len(gemini.received()) == 1, timeout=30)  # it holds the job, mid-call
    assert (
        httpx.get(f"{queueing.url}/api/analyses/{conversation_id}/main", headers=AUTH).json()["status"] == "processing"
    )
    doomed.kill()

    survivor = WorkerProcess(cwd=tmp_path, env=env)
    try:
        result = finished(queueing, conversation_id, timeout=60)
    finally:
        output = survivor.stop()

    assert result["status"] == "completed", result
    assert result["attempts"] == 2, "the killed attempt counts"
    assert "returned" in output, output


def test_the_worker_refuses_to_start_without_what_it_needs(tmp_path: Path) -> None:
    no_key = run_cli("worker", cwd=tmp_path, env={"STORAGE_ENABLED": "true", "NEXUS_DATA_DIR": str(tmp_path)})
    assert no_key.returncode != 0
    assert "AI_ANALYZER=gemini needs GEMINI_API_KEY" in no_key.stderr
    no_storage = run_cli("worker", cwd=tmp_path, env={"GEMINI_API_KEY": API_KEY})
    assert no_storage.returncode != 0
    assert "it needs storage (STORAGE_ENABLED=true)" in no_storage.stderr
    in_process = run_cli(
        "-p",
        "0",
        cwd=tmp_path,
        env={"AI_WORKER_ENABLED": "true", "STORAGE_ENABLED": "true", "NEXUS_DATA_DIR": str(tmp_path)},
    )
    assert in_process.returncode != 0
    assert "AI_WORKER_ENABLED" in in_process.stderr
    assert "needs GEMINI_API_KEY" in in_process.stderr
