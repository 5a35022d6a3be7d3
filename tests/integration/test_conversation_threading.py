"""Conversations threaded from real traffic: the SDK through the proxy into PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import sdk
from tests.support.claude_code_session import Thread, start_subagent
from tests.support.database import query
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def threading_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))


def linked(url: str, ids: list[str], *, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The rows of these requests once all are stored and linked."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(
            url,
            "SELECT * FROM exchanges WHERE id = ANY($1::uuid[]) AND conversation_id IS NOT NULL AND NOT link_pending",
            ids,
        )
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return {str(row["id"]): row for row in rows}
        time.sleep(0.02)


def test_a_tool_using_conversation_with_sub_agents_is_one_tree(threading_proxy: RunningProxy, database_url: str) -> None:
    main = Thread(sdk(threading_proxy.url), session_id=str(uuid.uuid4()))
    main.say("Review the service configuration, please.", scenario="tool_use")
    [read] = main.tool_calls()
    main.answer_tools({read.id: "timeout = 30"}, scenario="agents")
    first_call, second_call = main.tool_calls()
    second = start_subagent(main, second_call)  # the second launch starts first
    first = start_subagent(main, first_call)
    first.say("Also list the middleware.")
    main.answer_tools({first_call.id: "12 endpoints", second_call.id: "pytest, 3 folders"})

    rows = linked(database_url, main.request_ids + first.request_ids + second.request_ids)

    assert len(rows) == 6
    root = uuid.UUID(main.request_ids[0])
    assert {row["conversation_id"] for row in rows.values()} == {root}
    turn1, turn2, turn3 = (rows[i] for i in main.request_ids)
    assert (turn1["branch_id"], turn1["parent_request_id"], turn1["link_method"]) == ("main", None, "new")
    assert (turn2["branch_id"], turn2["parent_request_id"]) == ("main", turn1["id"])
    assert (turn3["branch_id"], turn3["parent_request_id"], turn3["is_subtask"]) == ("main", turn2["id"], False)
    first_start, first_follow_up = (rows[i] for i in first.request_ids)
    [second_start] = (rows[i] for i in second.request_ids)
    assert (first_start["branch_id"], second_start["branch_id"]) == ("subtask_1", "subtask_2")
    for start, call in ((first_start, first_call), (second_start, second_call)):
        assert start["parent_request_id"] == turn2["id"]
        assert start["parent_task_request_id"] == turn2["id"]
        assert start["spawn_tool_use_id"] == call.id
        assert start["is_subtask"] is True
    assert (first_follow_up["branch_id"], first_follow_up["parent_request_id"]) == ("subtask_1", first_start["id"])
    assert (first_follow_up["is_subtask"], first_follow_up["parent_task_request_id"]) == (True, turn2["id"])
