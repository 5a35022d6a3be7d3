"""The original proxy's linking fixtures (claude-nexus-proxy at 0d40f18), run through our linker.

Each full-format case stores ``parent`` as an already linked inference row (facts computed by our
own ``link_facts`` from its body and response, its conversation and branch from the fixture) a few
seconds before ``child``, links the child and checks the outcome the way the conformance notes
say: same conversation and parent request, the branch (exact, pattern or inherited), and the
sub-task flag with its parent task request. Stored hashes are not compared here, except in the
one clearly labelled test at the end. Fixture attribution: tests/fixtures/ATTRIBUTION.md.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from nexus.application.linking.linker import SUBAGENT_WINDOW, ConversationLinker
from nexus.application.ports.conversation_history import Link, Subject
from nexus.domain.conversation.branches import MAIN, subtask_number
from nexus.domain.conversation.compaction import canonical
from nexus.domain.conversation.message_hash import message_hashes
from tests.support.memory_history import MemoryHistory

FIXTURES = Path(__file__).parents[2] / "fixtures"
CHILD_AT = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)  # the original harness's fixed clock
PARENT_AT = CHILD_AT - timedelta(seconds=5)

CONVERSATION_CASES = [f"conversation-linking/{path.stem}" for path in sorted(FIXTURES.glob("conversation-linking/*"))]
FULL_SUBTASK_CASES = [
    "subtask-linking/04-second-subtask",
    "subtask-linking/05-subtask-follow",
    "subtask-linking/06-subtask-check",
]
FULL_CASES = CONVERSATION_CASES + FULL_SUBTASK_CASES
# 11's parent body was cut down after its hash was stored, so nothing recomputes that hash.
REPRODUCIBLE = [name for name in FULL_CASES if name != "conversation-linking/11-proxy-linking"]


@cache
def _read(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(_read(name))  # a fresh copy: the linker must not see shared state
    return case


def uid(value: str) -> uuid.UUID:
    """The fixture's id as a UUID (the simplified sub-task cases use names like parent-request-123)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, value)


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def store_parent(history: MemoryHistory, case: dict[str, Any], ts: datetime = PARENT_AT) -> Subject:
    """The parent as a linked row. One on a ``subtask_N`` branch is a sub-agent's first request."""
    parent = case["parent"]
    in_subtask = subtask_number(parent["branch_id"]) is not None
    link = Link(
        conversation_id=uid(parent["conversation_id"]),
        branch_id=parent["branch_id"],
        is_subtask=in_subtask,
        method="subagent" if in_subtask else "new",
    )
    return history.add(
        parent["body"], parent["response_body"], ts=ts, domain=parent["domain"], id=uid(parent["request_id"]), link=link
    )


def add_child(history: MemoryHistory, case: dict[str, Any], ts: datetime = CHILD_AT) -> Subject:
    child = case["child"]
    return history.add(child["body"], ts=ts, domain=child["domain"], id=uid(child["request_id"]))


def assert_outcome(case: dict[str, Any], child: Subject, link: Link) -> None:
    """The conformance notes' "How to use" rules. A missing ``expectedLink`` with
    ``expectedIsSubtask: true`` (subtask-linking/04) still means a link to the parent."""
    parent = case["parent"]
    if not case.get("expectedLink", case.get("expectedIsSubtask", False)):
        assert link == Link(conversation_id=child.id, branch_id=MAIN)
        return
    assert link.conversation_id == uid(parent["conversation_id"])
    assert link.parent_request_id == uid(parent["request_id"])
    if "expectedBranchPattern" in case:
        assert re.fullmatch(case["expectedBranchPattern"], link.branch_id), link.branch_id
    elif "expectedBranchId" in case:
        assert link.branch_id == case["expectedBranchId"]
    elif "expectedParentTaskRequestId" not in case:
        assert link.branch_id == parent["branch_id"]
    if "expectedParentTaskRequestId" in case:
        # The first sub-agent of a conversation without earlier sub-tasks is subtask_1.
        assert link.is_subtask
        assert link.parent_task_request_id == uid(case["expectedParentTaskRequestId"])
        assert link.branch_id == "subtask_1"
        assert link.method == "subagent"
    if "expectedIsSubtask" in case:
        assert link.is_subtask is case["expectedIsSubtask"]


@pytest.mark.parametrize("name", FULL_CASES)
async def test_full_format_case_links_as_expected(name: str) -> None:
    case = load(name)
    history = MemoryHistory()
    store_parent(history, case)
    child = add_child(history, case)

    link = await ConversationLinker(history).link(child)

    assert_outcome(case, child, link)


@pytest.mark.parametrize(
    "name",
    [
        "conversation-linking/04-compact",
        "conversation-linking/05-compact-follow-up",
        "conversation-linking/06-compact-weird",
    ],
)
def test_compact_child_carries_the_expected_summary(name: str) -> None:
    case = load(name)
    child = add_child(MemoryHistory(), case)

    key = child.facts.continuation_key

    assert key is not None
    assert canonical(case["expectedSummaryContent"]).startswith(key)


async def test_04_then_05_the_compact_branch_carries_on_through_the_follow_up() -> None:
    """05's parent is 04's child: link both and the follow-up stays on the compact branch."""
    compact, follow_up = load("conversation-linking/04-compact"), load("conversation-linking/05-compact-follow-up")
    history = MemoryHistory()
    summariser = store_parent(history, compact, ts=CHILD_AT - timedelta(seconds=10))
    continuation = add_child(history, compact, ts=CHILD_AT - timedelta(seconds=5))
    assert continuation.id == uid(follow_up["parent"]["request_id"])
    child = add_child(history, follow_up)

    await history.link_all()

    first, second = history.link_of(continuation.id), history.link_of(child.id)
    assert re.fullmatch(r"compact_\d{6}", first.branch_id)
    assert (first.conversation_id, first.parent_request_id, first.method) == (
        uid(compact["parent"]["conversation_id"]),
        summariser.id,
        "compact",
    )
    assert (second.conversation_id, second.branch_id, second.parent_request_id, second.method) == (
        first.conversation_id,
        first.branch_id,
        continuation.id,
        "chain",
    )


async def test_subtask_06_then_05_the_follow_up_stays_in_the_sub_agent() -> None:
    """05's parent is 06's child (the sub-agent's first request): link both, and the follow-up is
    a sub-task of 06's parent on subtask_1."""
    start, follow_up = load("subtask-linking/06-subtask-check"), load("subtask-linking/05-subtask-follow")
    history = MemoryHistory()
    spawner = store_parent(history, start, ts=CHILD_AT - timedelta(seconds=10))
    first = add_child(history, start, ts=CHILD_AT - timedelta(seconds=5))
    assert first.id == uid(follow_up["parent"]["request_id"])
    child = add_child(history, follow_up)

    await history.link_all()

    link = history.link_of(child.id)
    assert (link.conversation_id, link.branch_id, link.parent_request_id) == (
        uid(start["parent"]["conversation_id"]),
        "subtask_1",
        first.id,
    )
    assert link.is_subtask
    assert link.parent_task_request_id == spawner.id


# 02 and 03 as stored expect plain inheritance (no ``existingChild``). With an earlier sibling
# (another child of the same parent request) already linked, they must open a branch.


async def test_02_after_the_child_of_01_opens_a_branch() -> None:
    case = load("conversation-linking/02-branching")
    history = MemoryHistory()
    parent = store_parent(history, case)
    sibling = add_child(history, load("conversation-linking/01-simple-start"), ts=CHILD_AT - timedelta(seconds=2))
    child = add_child(history, case)

    await history.link_all()

    assert history.link_of(sibling.id).branch_id == MAIN
    link = history.link_of(child.id)
    assert re.fullmatch(r"branch_\d{14}", link.branch_id)
    assert link.branch_id == "branch_20250101120000"
    assert (link.conversation_id, link.parent_request_id) == (uid(case["parent"]["conversation_id"]), parent.id)


async def test_03_after_the_children_of_01_and_02_opens_another_branch() -> None:
    case = load("conversation-linking/03-re-branching")
    history = MemoryHistory()
    parent = store_parent(history, case)
    first = add_child(history, load("conversation-linking/01-simple-start"), ts=CHILD_AT - timedelta(seconds=3))
    second = add_child(history, load("conversation-linking/02-branching"), ts=CHILD_AT - timedelta(seconds=2))
    child = add_child(history, case)

    await history.link_all()

    branches = [history.link_of(row.id).branch_id for row in (first, second, child)]
    assert branches[0] == MAIN
    assert all(re.fullmatch(r"branch_\d{14}", branch) for branch in branches[1:])
    assert len(set(branches)) == 3
    assert all(history.link_of(row.id).parent_request_id == parent.id for row in (first, second, child))


# subtask-linking/01-03: a simplified format without a parent body. The parent is built as a
# request whose response launched ``Task`` sub-agents with the recorded prompts.


def store_task_parent(history: MemoryHistory, case: dict[str, Any]) -> Subject:
    parent = case["parent"]
    launches = [
        {
            "type": "tool_use",
            "id": invocation["tool_use_id"],
            "name": "Task",
            "input": {"description": "Delegated task", "prompt": invocation["prompt"]},
        }
        for invocation in parent["task_invocations"]
    ]
    body = {
        "system": [{"type": "text", "text": "You are a helpful assistant"}, {"type": "text", "text": "Use tools."}],
        "messages": [{"role": "user", "content": "Please review the authentication module"}],
    }
    response = {"role": "assistant", "content": [{"type": "text", "text": "Delegating."}, *launches]}
    request_id = uid(parent["request_id"])
    return history.add(
        body,
        response,
        ts=at(parent["timestamp"]),
        domain=case["child"]["domain"],
        id=request_id,
        link=Link(conversation_id=request_id, branch_id=MAIN),
    )


def add_simplified_child(history: MemoryHistory, case: dict[str, Any], ts: datetime | None = None) -> Subject:
    child = case["child"]
    return history.add(
        child["body"], ts=ts or at(child["timestamp"]), domain=child["domain"], id=uid(child["request_id"])
    )


@pytest.mark.parametrize("name", ["subtask-linking/01-subtask-matched", "subtask-linking/02-subtask-no-match"])
async def test_simplified_subtask_case(name: str) -> None:
    case = load(name)
    history = MemoryHistory()
    parent = store_task_parent(history, case)
    child = add_simplified_child(history, case)

    link = await ConversationLinker(history).link(child)

    if case["expectedIsSubtask"]:
        assert (link.conversation_id, link.parent_request_id, link.branch_id) == (parent.id, parent.id, "subtask_1")
        assert link.is_subtask
        assert link.parent_task_request_id == uid(case["expectedParentTaskRequestId"])
        assert link.spawn_tool_use_id == case["parent"]["task_invocations"][0]["tool_use_id"]
    else:
        assert link == Link(conversation_id=child.id, branch_id=MAIN)


async def test_subtask_03_links_within_our_24_hour_window() -> None:
    """Deliberate departure: the fixture expects no link 60 s after the Task call, but that encodes
    the 30-second window of a mock in the original's test file only; its production linker (and
    ours) accepts launches from the last 24 hours, so this child is a sub-task."""
    case = load("subtask-linking/03-subtask-expired")
    assert case["expectedIsSubtask"] is False
    history = MemoryHistory()
    parent = store_task_parent(history, case)
    child = add_simplified_child(history, case)

    link = await ConversationLinker(history).link(child)

    assert (link.conversation_id, link.parent_request_id, link.branch_id) == (parent.id, parent.id, "subtask_1")
    assert link.is_subtask
    assert link.parent_task_request_id == parent.id


async def test_subtask_03_past_our_24_hour_window_does_not_link() -> None:
    case = load("subtask-linking/03-subtask-expired")
    history = MemoryHistory()
    parent = store_task_parent(history, case)
    child = add_simplified_child(history, case, ts=parent.ts + SUBAGENT_WINDOW + timedelta(seconds=1))

    link = await ConversationLinker(history).link(child)

    assert link == Link(conversation_id=child.id, branch_id=MAIN)


# Hash bytes (clearly separate from the link outcomes above): the original's stored hashes were
# written by its 0d40f18 variant; our message hash keeps its bytes for these bodies (no injected
# system messages, no reminders in string content, no thinking blocks).


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_0d40f18_variant_message_hash_reproduces_the_stored_current_hash(name: str) -> None:
    parent = load(name)["parent"]

    hashes = message_hashes(parent["body"]["messages"])

    assert hashes is not None
    assert hashes.current == parent["current_message_hash"]


MULTI_MESSAGE_CHILDREN = [name for name in FULL_CASES if len(load(name)["child"]["body"]["messages"]) > 1]


def test_every_multi_message_child_is_listed() -> None:
    assert len(MULTI_MESSAGE_CHILDREN) == 10


@pytest.mark.parametrize("name", MULTI_MESSAGE_CHILDREN)
def test_0d40f18_variant_child_parent_hash_is_the_stored_parent_hash(name: str) -> None:
    case = load(name)

    hashes = message_hashes(case["child"]["body"]["messages"])

    assert hashes is not None
    assert hashes.parent == case["parent"]["current_message_hash"]
