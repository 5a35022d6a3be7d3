"""Conversations of plain SDK clients (no or one system block) are threaded like Claude Code's,
Claude Code's own side calls are not, and THREAD_RULE=original keeps the original's rule."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import sdk
from tests.support.dashboard import sign_in
from tests.support.database import query
from tests.support.processes import run_cli
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-threading"


def settled(url: str, ids: list[str], *, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The rows of these requests once all are stored and no longer waiting for the linker."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(url, "SELECT * FROM exchanges WHERE id = ANY($1::uuid[]) AND NOT link_pending", ids)
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return {str(row["id"]): row for row in rows}
        time.sleep(0.02)


def sdk_conversation(proxy: RunningProxy, *, system: str | None) -> list[str]:
    """Three turns as an SDK application sends them: the whole history each time."""
    client = sdk(proxy.url)
    messages: list[dict[str, Any]] = []
    ids = []
    for text in ("What is a B-tree?", "And a B+ tree?", "Which one does PostgreSQL use?"):
        messages.append({"role": "user", "content": text})
        options: dict[str, Any] = {"system": system} if system is not None else {}
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-5", max_tokens=64, messages=messages, **options
        )
        answer = raw.parse()
        ids.append(raw.headers["x-request-id"])
        messages.append({"role": "assistant", "content": answer.content[0].text})  # type: ignore[union-attr]
    return ids


def request_page(proxy: RunningProxy, request_id: str) -> str:
    client = sign_in(proxy.url, KEY)
    try:
        page = client.get(f"/dashboard/requests/{request_id}")
    finally:
        client.close()
    assert page.status_code == 200
    return page.text


@pytest.mark.parametrize("system", [None, "You are a database tutor."])
def test_a_multi_turn_sdk_conversation_is_one_thread(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, system: str | None
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    ids = sdk_conversation(proxy, system=system)
    rows = settled(database_url, ids)
    assert [rows[i]["request_type"] for i in ids] == ["query_evaluation"] * 3, "the original's class is kept"
    assert {rows[i]["conversation_id"] for i in ids} == {rows[ids[0]]["conversation_id"]} != {None}
    assert [rows[i]["parent_request_id"] for i in ids] == [None, rows[ids[0]]["id"], rows[ids[1]]["id"]]
    assert {rows[i]["branch_id"] for i in ids} == {"main"}


def test_claude_codes_side_calls_stay_out_and_the_request_page_says_why(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    raw = sdk(proxy.url).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=16,
        system="Summarize this coding conversation in under 50 characters.",
        messages=[{"role": "user", "content": "a title please"}],
        extra_headers={"x-claude-code-session-id": "11111111-2222-4333-8444-555555555555"},
    )
    side_call = raw.headers["x-request-id"]
    row = settled(database_url, [side_call])[side_call]
    assert (row["request_type"], row["conversation_id"], row["message_hash"]) == ("query_evaluation", None, None)
    assert "not threaded: a side call of Claude Code" in request_page(proxy, side_call)


def test_thread_rule_original_threads_only_inference_and_a_rebuild_threads_them_later(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(
        DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY, THREAD_RULE="original"
    )
    ids = sdk_conversation(proxy, system=None)
    rows = settled(database_url, ids)
    assert [rows[i]["conversation_id"] for i in ids] == [None] * 3
    assert "THREAD_RULE=original threads only inference" in request_page(proxy, ids[1])

    env = {"DATABASE_URL": database_url, "STORAGE_ENABLED": "true"}
    kept = run_cli("rebuild-conversations", cwd=tmp_path, env={**env, "THREAD_RULE": "original"}, timeout=60)
    assert kept.returncode == 0, kept.stderr
    assert [row["conversation_id"] for row in settled(database_url, ids).values()] == [None] * 3

    rebuilt = run_cli("rebuild-conversations", cwd=tmp_path, env=env, timeout=60)
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = settled(database_url, ids)
    assert [after[i]["parent_request_id"] for i in ids] == [None, after[ids[0]]["id"], after[ids[1]]["id"]]
    assert len({after[i]["conversation_id"] for i in ids}) == 1
