"""Conversations linked from real traffic: the SDK through the proxy into PostgreSQL."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import sdk
from tests.support.claude_code_session import MAIN_SYSTEM, Agent, start_subagent
from tests.support.database import query
from tests.support.fake_anthropic import SUMMARY_TEXT, FakeAnthropic
from tests.support.processes import ProxyProcess, free_port, run_cli
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

SUMMARISER = {"type": "text", "text": "You are a helpful AI assistant tasked with summarizing conversations."}
COMPACT_INSTRUCTION = (
    "Your task is to create a detailed summary of the conversation so far, paying close attention to the"
    " user's explicit requests and your previous actions."
)
# A 1x1 transparent PNG.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def continuation(summary: str) -> str:
    """Claude Code 2.1's first message after ``/compact``: the summary without its analysis."""
    body = summary.split("<summary>", 1)[1].split("</summary>", 1)[0].strip()
    return (
        "This session is being continued from a previous conversation that ran out of context. The summary"
        f" below covers the earlier portion of the conversation.\n\nSummary:\n{body}\n\nPlease continue the"
        " conversation from where we left it off without asking the user any further questions."
    )


@pytest.fixture
def linking_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
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


def test_a_tool_using_conversation_with_sub_agents_is_one_tree(linking_proxy: RunningProxy, database_url: str) -> None:
    main = Agent(sdk(linking_proxy.url), session_id=str(uuid.uuid4()))
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


def test_a_compaction_continues_on_a_compact_branch(linking_proxy: RunningProxy, database_url: str) -> None:
    client = sdk(linking_proxy.url)
    session = str(uuid.uuid4())
    main = Agent(client, session_id=session)
    main.say("Review the service configuration, please.")
    main.say("Raise the timeouts.")
    summariser = Agent(client, session_id=session, system=[*MAIN_SYSTEM[:2], SUMMARISER])
    summariser.messages = list(main.messages)
    summariser.say(COMPACT_INSTRUCTION, scenario="summary")
    continued = Agent(client, session_id=session)
    continued.say(continuation(SUMMARY_TEXT))
    continued.say("Now the retry settings.")

    rows = linked(database_url, main.request_ids + summariser.request_ids + continued.request_ids)

    compaction = rows[summariser.request_ids[0]]
    assert (compaction["parent_request_id"], compaction["branch_id"]) == (uuid.UUID(main.request_ids[1]), "main")
    assert compaction["summarises"] is True
    start, follow_up = (rows[i] for i in continued.request_ids)
    assert re.fullmatch(r"compact_\d{6}", start["branch_id"])
    assert (start["parent_request_id"], start["link_method"]) == (compaction["id"], "compact")
    assert (follow_up["branch_id"], follow_up["parent_request_id"]) == (start["branch_id"], start["id"])
    assert {row["conversation_id"] for row in rows.values()} == {uuid.UUID(main.request_ids[0])}


def test_a_child_sent_right_after_its_parent_is_linked_to_it(linking_proxy: RunningProxy, database_url: str) -> None:
    # The second request races the first one's recording; how soon links land is measured by
    # bench/linker_load.py (live p50/p99), not timed here.
    main = Agent(sdk(linking_proxy.url), session_id=str(uuid.uuid4()))
    main.say("First question.")
    main.say("Second question, sent the moment the first answer ended.")

    rows = linked(database_url, main.request_ids, timeout=10.0)

    assert rows[main.request_ids[1]]["parent_request_id"] == uuid.UUID(main.request_ids[0])


def test_a_conversation_spans_a_restart_and_several_workers(
    fake: FakeAnthropic, database_url: str, tmp_path: Path
) -> None:
    env = {"CLAUDE_API_BASE_URL": fake.url, "DATABASE_URL": database_url, "STORAGE_ENABLED": "true"}
    session = str(uuid.uuid4())
    messages: list[dict[str, Any]] = []
    ids: list[str] = []
    port = free_port()  # the same address before and after: the domain is the Host header
    for args in (("--workers", "2"), ()):
        proxy = ProxyProcess(cwd=tmp_path, env=env, args=args, port=port).wait_ready(timeout=60)
        try:
            agent = Agent(sdk(proxy.url), session_id=session)
            agent.messages = messages
            for turn in range(3):
                agent.say(f"Turn {len(ids) + 1 + turn}.")
            ids += agent.request_ids
            linked(database_url, ids)
        finally:
            proxy.stop()

    rows = linked(database_url, ids)

    assert [rows[i]["parent_request_id"] for i in ids] == [None, *(uuid.UUID(i) for i in ids[:-1])]
    assert {rows[i]["branch_id"] for i in ids} == {"main"}
    assert {rows[i]["conversation_id"] for i in ids} == {uuid.UUID(ids[0])}


def test_rebuild_conversations_restores_links_and_changes_nothing_when_run_again(
    linking_proxy: RunningProxy, database_url: str, tmp_path: Path
) -> None:
    main = Agent(sdk(linking_proxy.url), session_id=str(uuid.uuid4()))
    main.say("Review the service configuration, please.", scenario="agents")
    calls = main.tool_calls()
    agents = [start_subagent(main, call) for call in calls]
    main.answer_tools({call.id: "done" for call in calls})
    ids = main.request_ids + [i for agent in agents for i in agent.request_ids]
    before = linked(database_url, ids)
    query(database_url, "UPDATE exchanges SET branch_id = 'damaged', conversation_id = gen_random_uuid()")
    env = {"DATABASE_URL": database_url, "STORAGE_ENABLED": "true"}

    repaired = run_cli("rebuild-conversations", cwd=tmp_path, env=env, timeout=60)
    again = run_cli("rebuild-conversations", "--since", "2020-01-01", cwd=tmp_path, env=env, timeout=60)

    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.strip() == f"Re-linked {len(ids)} requests; {len(ids)} links changed."
    assert again.stdout.strip() == f"Re-linked {len(ids)} requests; 0 links changed."
    after = linked(database_url, ids)
    link_columns = ("conversation_id", "branch_id", "parent_request_id", "is_subtask", "parent_task_request_id")
    assert {i: [after[i][c] for c in link_columns] for i in ids} == {
        i: [before[i][c] for c in link_columns] for i in ids
    }
    [summary] = query(database_url, "SELECT * FROM conversations")
    assert (summary["conversation_id"], summary["request_count"], summary["subtask_count"]) == (
        uuid.UUID(ids[0]), len(ids), 2,
    )  # fmt: skip


def test_images_and_thinking_blocks_chain_even_when_earlier_thinking_is_dropped(
    linking_proxy: RunningProxy, database_url: str
) -> None:
    main = Agent(sdk(linking_proxy.url), session_id=str(uuid.uuid4()))
    main.messages.append({"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "text", "text": "What is in this picture?"},
    ]})  # fmt: skip
    main._send("thinking")
    assert [block["type"] for block in main.messages[-1]["content"]] == ["thinking", "text"]
    main.say("And its colour?", scenario="thinking")
    # A client may drop (or redact) earlier turns' thinking when it sends the next turn.
    main.messages[1]["content"] = [b for b in main.messages[1]["content"] if b["type"] != "thinking"]
    main.say("Thanks.")

    rows = linked(database_url, main.request_ids)

    assert [rows[i]["parent_request_id"] for i in main.request_ids] == [
        None, *(uuid.UUID(i) for i in main.request_ids[:-1]),
    ]  # fmt: skip
    assert {rows[i]["branch_id"] for i in main.request_ids} == {"main"}
