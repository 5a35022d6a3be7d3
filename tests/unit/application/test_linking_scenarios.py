"""Conversation linking over an in-memory history, with small hand-written Claude Code traffic.

Each request resends the whole conversation so far, as Claude Code does: ``[u1]``, then
``[u1, a1, u2]``, then ``[u1, a1, u2, a2, u3]``. Bodies carry what real ones do (a system prompt
of several blocks, reminders, cache_control, tool calls and results) so the facts are computed
from realistic input; rows are linked by the ``link_pending`` loop unless a test says otherwise.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from nexus.application.ports.conversation_history import Link, Subject
from nexus.domain.conversation.branches import MAIN
from nexus.domain.conversation.message_hash import message_hashes
from tests.support.memory_history import MemoryHistory

T0 = datetime(2026, 3, 2, 9, 30, 0, tzinfo=UTC)

CLAUDE_CODE: list[dict[str, Any]] = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.30; cc_entrypoint=cli"},
    {
        "type": "text",
        "text": "You are Claude Code, Anthropic's official CLI for Claude.",
        "cache_control": {"type": "ephemeral"},
    },
    {
        "type": "text",
        "text": "You are an interactive CLI tool that helps users with software engineering tasks.\n\n"
        "gitStatus: This is the git status at the start of the conversation.\nCurrent branch: main",
        "cache_control": {"type": "ephemeral"},
    },
]
SUB_AGENT: list[dict[str, Any]] = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an agent for Claude Code, Anthropic's official CLI for Claude. Do the task."},
]
SUMMARISER: list[dict[str, Any]] = [
    {"type": "text", "text": "You are a helpful AI assistant tasked with summarizing conversations."},
    {"type": "text", "text": "Write the summary in the requested format."},
]
REMINDER = "<system-reminder>\nToday's date is 2026-03-02. The todo list is empty.\n</system-reminder>"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def body(*messages: dict[str, Any], system: list[dict[str, Any]] = CLAUDE_CODE) -> dict[str, Any]:
    return {
        "model": "claude-opus-4-6",
        "max_tokens": 32000,
        "stream": True,
        "system": system,
        "messages": list(messages),
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "metadata": {"user_id": "user_abc_account__session_1"},
    }


def text(value: str, *, cache: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": value}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    return block


def user(*content: str | dict[str, Any]) -> dict[str, Any]:
    """One string is string content; anything else is blocks (strings become text blocks)."""
    if len(content) == 1 and isinstance(content[0], str):
        return {"role": "user", "content": content[0]}
    return {"role": "user", "content": [text(c) if isinstance(c, str) else c for c in content]}


def assistant(*blocks: str | dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": [text(b) if isinstance(b, str) else b for b in blocks]}


def system_message(value: str) -> dict[str, Any]:
    return {"role": "system", "content": value}


def tool_use(tool_id: str, name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(tool_id: str, content: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content}


def agent(tool_id: str, prompt: str, *, name: str = "Agent") -> dict[str, Any]:
    return tool_use(tool_id, name, description="Sub-task", prompt=prompt, subagent_type="general-purpose")


def response(message: dict[str, Any]) -> dict[str, Any]:
    """The response message for an assistant turn, as the recorder rebuilds it."""
    return {"id": "msg_01", "type": "message", "model": "claude-opus-4-6", "stop_reason": "end_turn"} | message


# A short session: a question, a tool call and its result, an answer, a next question.
U1 = user(text(REMINDER), text("Add a --verbose flag to the CLI", cache=True))
A1 = assistant("I'll read the entry point first.", tool_use("toolu_read", "Read", file_path="/repo/cli.py"))
U2 = user(tool_result("toolu_read", "import argparse\n\ndef main(): ...\n"))
A2 = assistant("Added `--verbose`; it raises the log level to DEBUG.")
U3 = user("Now add a test for it")
A3 = assistant("Added tests/test_cli.py::test_verbose.")
U4 = user("Thanks, and update the README")


def history_of_turns(history: MemoryHistory, *, turns: int, session: str | None = None) -> list[Subject]:
    """Requests [U1], [U1 A1 U2], [U1 A1 U2 A2 U3] (as many as ``turns``), ten seconds apart."""
    messages = [U1, A1, U2, A2, U3, A3, U4]
    return [
        history.add(body(*messages[: 2 * n + 1]), response(messages[2 * n + 1]), ts=at(10 * n), session_id=session)
        for n in range(turns)
    ]


def link(history: MemoryHistory, row: Subject) -> Link:
    return history.link_of(row.id)


# Edits and retries


async def test_edited_message_opens_a_branch_named_after_its_time() -> None:
    history = MemoryHistory()
    first, second, third = history_of_turns(history, turns=3)
    edited = history.add(body(U1, A1, U2, A2, user("Now add two tests for it")), ts=at(35))

    await history.link_all()

    assert [link(history, row).branch_id for row in (first, second, third)] == [MAIN] * 3
    assert link(history, edited) == Link(
        conversation_id=first.id, branch_id="branch_20260302093035", parent_request_id=second.id, method="chain"
    )


async def test_second_edit_of_the_same_message_opens_another_branch_and_each_branch_goes_on() -> None:
    history = MemoryHistory()
    _, second, _ = history_of_turns(history, turns=3)
    two_tests = user("Now add two tests for it")
    edit = history.add(body(U1, A1, U2, A2, two_tests), response(A3), ts=at(35))
    again = history.add(body(U1, A1, U2, A2, user("Actually, no tests")), ts=at(47))
    same_second = history.add(body(U1, A1, U2, A2, user("Tests later")), ts=at(47.5))
    on_edit = history.add(body(U1, A1, U2, A2, two_tests, A3, U4), ts=at(60))

    await history.link_all()

    assert link(history, edit).branch_id == "branch_20260302093035"
    assert link(history, again).branch_id == "branch_20260302093047"
    assert link(history, same_second).branch_id == "branch_20260302093047_2"
    assert all(link(history, row).parent_request_id == second.id for row in (edit, again, same_second))
    assert link(history, on_edit).branch_id == "branch_20260302093035"
    assert link(history, on_edit).parent_request_id == edit.id


async def test_retry_of_the_last_turn_joins_its_branch() -> None:
    """A retried request (the first attempt failed: no response) is the same content again."""
    history = MemoryHistory()
    first, second = history_of_turns(history, turns=2)
    failed = history.add(body(U1, A1, U2, A2, U3), None, ts=at(20))
    retry = history.add(body(U1, A1, U2, A2, U3), response(A3), ts=at(25))
    edit = history.add(body(U1, A1, U2, A2, user("Now add two tests for it")), ts=at(30))
    edit_retry = history.add(body(U1, A1, U2, A2, user("Now add two tests for it")), ts=at(38))
    next_turn = history.add(body(U1, A1, U2, A2, U3, A3, U4), ts=at(40))

    await history.link_all()

    assert link(history, failed).branch_id == MAIN
    assert link(history, retry) == Link(
        conversation_id=first.id, branch_id=MAIN, parent_request_id=second.id, method="chain"
    )
    assert link(history, edit).branch_id == "branch_20260302093030"
    assert link(history, edit_retry).branch_id == "branch_20260302093030"
    assert link(history, next_turn).parent_request_id == retry.id  # the newest of equal candidates
    assert link(history, next_turn).branch_id == MAIN
    assert {link(history, row).branch_id for row in (first, second, failed, retry, next_turn)} == {MAIN}


# Sub-agents

PROMPT_A = "Find every test that sleeps and list the files"
PROMPT_B = "Check the CI logs for the last flaky run and summarise the failures"
PROMPT_C = "Open tests/test_io.py and explain the sleep on line 40"
LAUNCH = user("Investigate the flaky tests, in parallel")
LAUNCH_REPLY = assistant("I'll start two agents.", agent("toolu_agent_a", PROMPT_A), agent("toolu_agent_b", PROMPT_B))
A_TURN = assistant(tool_use("toolu_grep", "Grep", pattern="sleep("))
A_RESULT = user(tool_result("toolu_grep", "tests/test_io.py:40"))
A_NESTED = assistant("Let me delegate the detail.", agent("toolu_agent_c", PROMPT_C))
A_NESTED_RESULT = user(tool_result("toolu_agent_c", "The sleep waits for a socket."))


def sub_agent_start(prompt: str) -> dict[str, Any]:
    return body(user(text(REMINDER), text(prompt)), system=SUB_AGENT)


def spawn(history: MemoryHistory, *, launches: dict[str, Any] = LAUNCH_REPLY) -> Subject:
    return history.add(body(LAUNCH), response(launches), ts=at(0))


def assert_subtask(history: MemoryHistory, row: Subject, branch: str, spawner: Subject, parent: Subject) -> None:
    got = link(history, row)
    assert got.branch_id == branch
    assert got.is_subtask
    assert got.parent_task_request_id == spawner.id
    assert got.parent_request_id == parent.id
    assert got.conversation_id == link(history, spawner).conversation_id


@pytest.mark.parametrize("order", ["second starts first", "second is linked first"])
async def test_parallel_sub_agents_are_numbered_by_tool_call_order(order: str) -> None:
    history = MemoryHistory()
    main = spawn(history)
    if order == "second starts first":
        second = history.add(sub_agent_start(PROMPT_B), ts=at(1))
        first = history.add(sub_agent_start(PROMPT_A), ts=at(2))
        await history.link_all()
    else:  # the first sub-agent's request is stored (and linked) after the second's
        second = history.add(sub_agent_start(PROMPT_B), ts=at(2))
        await history.link_all()
        first = history.add(sub_agent_start(PROMPT_A), ts=at(1))
        await history.link_all()

    assert_subtask(history, first, "subtask_1", main, main)
    assert_subtask(history, second, "subtask_2", main, main)
    assert link(history, first).spawn_tool_use_id == "toolu_agent_a"
    assert link(history, second).spawn_tool_use_id == "toolu_agent_b"
    assert link(history, first).method == link(history, second).method == "subagent"


@pytest.mark.parametrize("tool", ["Agent", "Task"])
async def test_sub_agent_follow_ups_stay_on_its_branch_and_the_main_line_is_not_a_subtask(tool: str) -> None:
    """``Task`` is the tool's name before Claude Code 2.1.63; it works the same."""
    history = MemoryHistory()
    launches = assistant("Two agents.", agent("toolu_agent_a", PROMPT_A, name=tool), agent("toolu_agent_b", PROMPT_B))
    main = spawn(history, launches=launches)
    start = history.add(sub_agent_start(PROMPT_A), response(A_TURN), ts=at(1))
    a_start = user(text(REMINDER), text(PROMPT_A))
    turn = history.add(body(a_start, A_TURN, A_RESULT, system=SUB_AGENT), response(assistant("Found one.")), ts=at(3))
    last = history.add(
        body(a_start, A_TURN, A_RESULT, assistant("Found one."), user(f"{REMINDER}Go on"), system=SUB_AGENT),
        ts=at(5),
    )
    results = user(tool_result("toolu_agent_a", "tests/test_io.py"), tool_result("toolu_agent_b", "timeouts"))
    main_next = history.add(body(LAUNCH, launches, results), response(assistant("Both done.")), ts=at(10))
    main_after = history.add(body(LAUNCH, launches, results, assistant("Both done."), user("Fix them")), ts=at(20))

    await history.link_all()

    assert_subtask(history, start, "subtask_1", main, main)
    assert link(history, start).spawn_tool_use_id == "toolu_agent_a"
    assert_subtask(history, turn, "subtask_1", main, start)
    assert_subtask(history, last, "subtask_1", main, turn)
    for row, parent in ((main_next, main), (main_after, main_next)):
        assert link(history, row) == Link(
            conversation_id=main.id, branch_id=MAIN, parent_request_id=parent.id, method="chain"
        )


async def test_nested_sub_agent_gets_its_own_number_and_is_spawned_from_the_sub_agents_branch() -> None:
    history = MemoryHistory()
    main = spawn(history)
    a_start = user(text(REMINDER), text(PROMPT_A))
    first = history.add(sub_agent_start(PROMPT_A), response(A_TURN), ts=at(1))
    second = history.add(sub_agent_start(PROMPT_B), ts=at(2))
    launcher = history.add(body(a_start, A_TURN, A_RESULT, system=SUB_AGENT), response(A_NESTED), ts=at(3))
    nested = history.add(sub_agent_start(PROMPT_C), response(assistant("It waits for a socket.")), ts=at(4))
    back = history.add(body(a_start, A_TURN, A_RESULT, A_NESTED, A_NESTED_RESULT, system=SUB_AGENT), ts=at(9))

    await history.link_all()

    assert_subtask(history, first, "subtask_1", main, main)
    assert_subtask(history, second, "subtask_2", main, main)
    assert_subtask(history, launcher, "subtask_1", main, first)
    assert_subtask(history, nested, "subtask_3", launcher, launcher)
    assert_subtask(history, back, "subtask_1", main, launcher)


async def test_a_nested_sub_agent_starting_before_its_parents_sibling_does_not_take_its_number() -> None:
    """Numbers belong to launches: the second launch of the main response is subtask_2 even
    when a sub-agent launched by the first one starts earlier."""
    history = MemoryHistory()
    main = spawn(history)
    a_start = user(text(REMINDER), text(PROMPT_A))
    first = history.add(sub_agent_start(PROMPT_A), response(A_TURN), ts=at(1))
    launcher = history.add(body(a_start, A_TURN, A_RESULT, system=SUB_AGENT), response(A_NESTED), ts=at(2))
    nested = history.add(sub_agent_start(PROMPT_C), response(assistant("It waits for a socket.")), ts=at(3))
    second = history.add(sub_agent_start(PROMPT_B), ts=at(4))

    await history.link_all()

    assert_subtask(history, first, "subtask_1", main, main)
    assert_subtask(history, second, "subtask_2", main, main)
    assert_subtask(history, nested, "subtask_3", launcher, launcher)


# Compactions

SUMMARY_POINTS = (
    "1. Primary Request and Intent:\n   The user asked for a --verbose flag in the CLI and a test for it.\n\n"
    "2. Key Technical Concepts:\n   - argparse, logging levels, pytest\n\n"
    "3. Files and Code Sections:\n   - /repo/cli.py: added the flag\n   - tests/test_cli.py: new test\n\n"
    "4. Pending Tasks:\n   - Update the README"
)
ANALYSIS = "Looking at the conversation chronologically: the user wants a verbose flag; I read cli.py."
SUMMARY_RESPONSE = response(
    assistant(f"<analysis>\n{ANALYSIS}\n</analysis>\n\n<summary>\n{SUMMARY_POINTS}\n</summary>")
)
OLD_CONTINUATION = (
    "This session is being continued from a previous conversation that ran out of context. "
    f"The conversation is summarized below:\nAnalysis:\n{ANALYSIS}\n\nSummary:\n{SUMMARY_POINTS}.\n"
    "Please continue the conversation from where we left it off without asking the user any further questions."
)
NEW_CONTINUATION = (
    "This session is being continued from a previous conversation that ran out of context. "
    f"The summary below covers the earlier portion of the conversation.\n\nSummary:\n{SUMMARY_POINTS}\n\n"
    "If you need specific details from before compaction (like exact code snippets, error messages, or content "
    "you generated), read the full transcript at: /home/dev/.claude/projects/repo/0b9c.jsonl\n"
    "Continue the conversation from where it left off without asking the user any further questions. "
    "Resume directly."
)
SUMMARY_REQUEST = "Your task is to create a detailed summary of the conversation so far, paying close attention."


def summariser(fmt: str) -> dict[str, Any]:
    """The compaction request: the whole history and an instruction to summarise it."""
    if fmt == "old":
        return body(U1, A1, U2, A2, user("Summarise this conversation."), system=SUMMARISER)
    return body(U1, A1, U2, A2, user(text(REMINDER), text(SUMMARY_REQUEST)))


def continuation(fmt: str) -> dict[str, Any]:
    return user(text(REMINDER), text(OLD_CONTINUATION if fmt == "old" else NEW_CONTINUATION))


@pytest.mark.parametrize("fmt", ["old", "2.1"])
async def test_compaction_continues_on_a_compact_branch(fmt: str) -> None:
    history = MemoryHistory()
    first, second = history_of_turns(history, turns=2)
    summarising = history.add(summariser(fmt), SUMMARY_RESPONSE, ts=at(20))
    resumed = history.add(body(continuation(fmt)), response(A3), ts=at(30))
    after = history.add(body(continuation(fmt), A3, U4), response(assistant("Updated.")), ts=at(40))
    later = history.add(body(continuation(fmt), A3, U4, assistant("Updated."), user("Commit it")), ts=at(50))

    await history.link_all()

    assert link(history, summarising).parent_request_id == second.id
    got = link(history, resumed)
    assert got == Link(
        conversation_id=first.id, branch_id="compact_093030", parent_request_id=summarising.id, method="compact"
    )
    assert re.fullmatch(r"compact_\d{6}", got.branch_id)
    assert link(history, after).branch_id == link(history, later).branch_id == "compact_093030"
    assert link(history, later).parent_request_id == after.id


async def test_the_turn_after_a_cancelled_compaction_stays_on_its_branch() -> None:
    """The compaction request is a child of the last turn, but not an edit of the next one."""
    history = MemoryHistory()
    first, second = history_of_turns(history, turns=2)
    history.add(summariser("2.1"), None, ts=at(20))  # cancelled: no response, no continuation
    next_turn = history.add(body(U1, A1, U2, A2, U3), ts=at(30))

    await history.link_all()

    assert link(history, next_turn) == Link(
        conversation_id=first.id, branch_id=MAIN, parent_request_id=second.id, method="chain"
    )


async def test_2_1_continuation_carrying_the_transcript_tail_still_links() -> None:
    history = MemoryHistory()
    first, _ = history_of_turns(history, turns=2)
    summarising = history.add(summariser("2.1"), SUMMARY_RESPONSE, ts=at(20))
    tail = (assistant(tool_use("toolu_ls", "Bash", command="ls")), user(tool_result("toolu_ls", "README.md")))
    resumed = history.add(body(continuation("2.1"), *tail), ts=at(30))

    await history.link_all()

    assert link(history, resumed) == Link(
        conversation_id=first.id, branch_id="compact_093030", parent_request_id=summarising.id, method="compact"
    )


async def test_continuation_matched_only_by_session_links_by_session() -> None:
    history = MemoryHistory()
    first, _ = history_of_turns(history, turns=2, session="session-1")
    summarising = history.add(summariser("2.1"), SUMMARY_RESPONSE, ts=at(20), session_id="session-1")
    reworded = NEW_CONTINUATION.replace("--verbose flag", "--quiet option")
    resumed = history.add(body(user(reworded)), ts=at(30), session_id="session-1")

    await history.link_all()

    assert link(history, resumed) == Link(
        conversation_id=first.id, branch_id="compact_093030", parent_request_id=summarising.id, method="compact_session"
    )


async def test_unmatched_continuation_starts_a_conversation() -> None:
    history = MemoryHistory()
    history_of_turns(history, turns=2)
    history.add(summariser("2.1"), SUMMARY_RESPONSE, ts=at(20))
    resumed = history.add(body(user(NEW_CONTINUATION.replace("--verbose flag", "--quiet option"))), ts=at(30))

    await history.link_all()

    assert link(history, resumed) == Link(conversation_id=resumed.id, branch_id=MAIN)


# Domains, injected messages, reminders, images and thinking


async def test_identical_requests_in_two_domains_never_link() -> None:
    history = MemoryHistory()
    spawner = history.add(body(LAUNCH), response(LAUNCH_REPLY), ts=at(0), domain="team-a.example")
    history.add(body(U1), response(A1), ts=at(1), domain="team-a.example")
    history.add(summariser("old"), SUMMARY_RESPONSE, ts=at(2), domain="team-a.example")
    others = [
        history.add(body(U1, A1, U2), ts=at(10), domain="team-b.example"),
        history.add(sub_agent_start(PROMPT_A), ts=at(11), domain="team-b.example"),
        history.add(body(continuation("old")), ts=at(12), domain="team-b.example"),
        history.add(body(U1, A1, U2), ts=at(13), domain=None),  # no domain is a domain of its own
    ]

    await history.link_all()

    for row in others:
        assert link(history, row) == Link(conversation_id=row.id, branch_id=MAIN)
    assert link(history, spawner).conversation_id == spawner.id


async def test_injected_system_messages_do_not_change_linking() -> None:
    history = MemoryHistory()
    first = history.add(body(system_message("Context: repo"), U1), response(A1), ts=at(0))
    second = history.add(
        body(U1, system_message("Files changed"), A1, U2, system_message("Note")), response(A2), ts=at(10)
    )
    third = history.add(body(system_message("a"), U1, A1, U2, A2, system_message("b"), U3), ts=at(20))
    launcher = history.add(body(LAUNCH), response(LAUNCH_REPLY), ts=at(30))
    sub_agent = history.add(body(user(PROMPT_A), system_message("You are a sub-agent"), system=SUB_AGENT), ts=at(31))
    only_system = history.add(body(system_message("Nothing to link")), ts=at(40))

    await history.link_all()

    assert link(history, second).parent_request_id == first.id
    assert link(history, third).parent_request_id == second.id
    assert link(history, third).conversation_id == first.id
    assert link(history, sub_agent).parent_task_request_id == launcher.id
    assert link(history, only_system) == Link(conversation_id=only_system.id, branch_id=MAIN)


async def test_reminder_in_string_content_and_as_a_block_hash_identically() -> None:
    as_string = user(f"{REMINDER}\nFix the bug in parser.py")
    as_blocks = user(text(REMINDER), text("Fix the bug in parser.py", cache=True))
    assert message_hashes([as_string]) == message_hashes([as_blocks])
    history = MemoryHistory()
    first = history.add(body(as_string), response(A1), ts=at(0))
    second = history.add(body(as_blocks, A1, U2), ts=at(10))

    await history.link_all()

    assert link(history, second).parent_request_id == first.id


async def test_requests_with_images_chain_and_a_different_image_does_not() -> None:
    def image(data: str) -> dict[str, Any]:
        return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}

    history = MemoryHistory()
    question = user(image("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"), text("What is wrong in this screenshot?"))
    first = history.add(body(question), response(A1), ts=at(0))
    second = history.add(body(question, A1, U2), ts=at(10))
    other = user(image("R0lGODlhAQABAIAAAAAAAP"), text("What is wrong in this screenshot?"))
    unrelated = history.add(body(other, A1, U2), ts=at(20))

    await history.link_all()

    assert link(history, second).parent_request_id == first.id
    assert link(history, unrelated) == Link(conversation_id=unrelated.id, branch_id=MAIN)


async def test_thinking_blocks_dropped_in_the_next_request_still_chain() -> None:
    thinking = {"type": "thinking", "thinking": "The flag belongs in main().", "signature": "EqQBCkYIBBgC"}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    a1 = assistant(
        thinking, "I'll read the entry point first.", tool_use("toolu_read", "Read", file_path="/repo/cli.py")
    )
    a1_dropped = assistant("I'll read the entry point first.", tool_use("toolu_read", "Read", file_path="/repo/cli.py"))
    a2 = assistant(redacted, "Added `--verbose`; it raises the log level to DEBUG.")
    history = MemoryHistory()
    first = history.add(body(U1), response(a1), ts=at(0))
    second = history.add(body(U1, a1, U2), response(a2), ts=at(10))
    third = history.add(body(U1, a1_dropped, U2, A2, U3), ts=at(20))

    await history.link_all()

    assert link(history, second).parent_request_id == first.id
    assert link(history, third).parent_request_id == second.id
    assert link(history, third).branch_id == MAIN


# Sessions


@pytest.mark.parametrize(("session", "expected"), [("session-1", 0), ("session-2", 1), (None, 1)])
async def test_same_session_parent_wins_among_identical_candidates(session: str | None, expected: int) -> None:
    history = MemoryHistory()
    candidates = [
        history.add(body(U1), response(A1), ts=at(0), session_id="session-1"),
        history.add(body(U1), response(A1), ts=at(5), session_id="session-2"),  # newer
    ]
    child = history.add(body(U1, A1, U2), ts=at(10), session_id=session)

    await history.link_all()

    assert link(history, child).parent_request_id == candidates[expected].id


async def test_session_alone_never_merges_requests_whose_content_does_not_chain() -> None:
    history = MemoryHistory()
    rows = [
        history.add(body(user("What does this repo do?")), response(A1), ts=at(0), session_id="session-1"),
        history.add(body(user("Unrelated: write a haiku")), response(A2), ts=at(10), session_id="session-1"),
        history.add(body(user("Third"), A2, user("Fourth")), ts=at(20), session_id="session-1"),
    ]

    await history.link_all()

    for row in rows:
        assert link(history, row) == Link(conversation_id=row.id, branch_id=MAIN)


# Late arrivals and idempotence


async def test_late_parent_relinks_the_children_linked_before_it() -> None:
    history = MemoryHistory()
    second = history.add(body(U1, A1, U2), response(A2), ts=at(10))
    third = history.add(body(U1, A1, U2, A2, U3), ts=at(20))
    await history.link_all()
    assert link(history, second) == Link(conversation_id=second.id, branch_id=MAIN)
    assert link(history, third).conversation_id == second.id

    first = history.add(body(U1), response(A1), ts=at(0))  # a long request stored last
    counts = await history.link_all()

    assert link(history, second) == Link(
        conversation_id=first.id, branch_id=MAIN, parent_request_id=first.id, method="chain"
    )
    assert link(history, third) == Link(
        conversation_id=first.id, branch_id=MAIN, parent_request_id=second.id, method="chain"
    )
    assert counts.changed == 2


class Request(NamedTuple):
    body: dict[str, Any]
    response: Any
    seconds: float
    agent: str | None = None  # Claude Code's sub-agent id (sent with a session id)


PROMPT_D = "Double-check the README mentions --verbose"


def busy_day() -> list[Request]:
    """A session's requests: edits, a retry, parallel and nested sub-agents, a sub-agent whose
    context no longer chains, a later sub-agent and a compaction."""
    a_start = user(text(REMINDER), text(PROMPT_A))
    results = user(tool_result("toolu_agent_a", "tests/test_io.py"), tool_result("toolu_agent_b", "timeouts"))
    main_line = (U1, A1, U2, A2, U3, A3, LAUNCH, LAUNCH_REPLY, results)
    launch_d = assistant(agent("toolu_agent_d", PROMPT_D))
    compact = user(tool_result("toolu_agent_d", "It does."), text(SUMMARY_REQUEST))
    return [
        Request(body(U1), response(A1), 0),
        Request(body(U1, A1, U2), response(A2), 10),
        Request(body(U1, A1, U2, A2, U3), response(A3), 20),
        Request(body(U1, A1, U2, A2, U3), response(A3), 21),  # a retry
        Request(body(U1, A1, U2, A2, user("Two tests")), response(A3), 30),  # an edit
        Request(body(U1, A1, U2, A2, user("Two tests"), A3, U4), None, 40),
        Request(body(U1, A1, U2, A2, U3, A3, LAUNCH), response(LAUNCH_REPLY), 50),
        Request(sub_agent_start(PROMPT_B), None, 51, "agent-b"),
        Request(sub_agent_start(PROMPT_A), response(A_TURN), 52, "agent-a"),
        Request(body(a_start, A_TURN, A_RESULT, system=SUB_AGENT), response(A_NESTED), 53, "agent-a"),
        Request(sub_agent_start(PROMPT_C), None, 54, "agent-c"),
        Request(body(user("(trimmed context)"), assistant("ok"), user("go on"), system=SUB_AGENT), None, 56, "agent-a"),
        Request(body(*main_line), response(A2), 60),
        Request(body(*main_line, A2, user("One more check")), response(launch_d), 65),
        Request(sub_agent_start(PROMPT_D), None, 66, "agent-d"),
        Request(body(*main_line, A2, user("One more check"), launch_d, compact), SUMMARY_RESPONSE, 70),
        Request(body(continuation("2.1")), response(A3), 80),
        Request(body(continuation("2.1"), A3, U4), None, 90),
    ]


def store(history: MemoryHistory, request: Request, session: str | None, row_id: uuid.UUID | None = None) -> Subject:
    agent_id = request.agent if session else None
    return history.add(
        request.body, request.response, ts=at(request.seconds), session_id=session, agent_id=agent_id, id=row_id
    )


async def test_linking_again_changes_nothing_and_a_rebuild_gives_the_same_links() -> None:
    history = MemoryHistory()
    rows = [store(history, request, "session-1") for request in busy_day()]
    await history.link_all()
    links = {row.id: link(history, row) for row in rows}
    branches = {got.branch_id for got in links.values()}
    assert branches == {
        MAIN,
        "branch_20260302093030",
        "subtask_1",
        "subtask_2",
        "subtask_3",
        "subtask_4",
        "compact_093120",
    }
    assert links[rows[11].id].method == "agent_session"

    again = await history.link_all()
    assert (again.linked, again.changed) == (0, 0)

    history.requeue_all()
    rebuilt = await history.link_all()
    assert (rebuilt.linked, rebuilt.changed) == (len(rows), 0)
    assert {row.id: link(history, row) for row in rows} == links


@pytest.mark.parametrize("session", ["session-1", None])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_any_arrival_order_gives_the_links_of_linking_in_order(seed: int, session: str | None) -> None:
    """Rows are stored when their response ends, so they arrive out of order; the loop puts
    back what a late row changes, and the end result is the same as linking in order."""
    requests = [(uuid.uuid4(), request) for request in busy_day()]
    in_order = MemoryHistory()
    for row_id, request in requests:
        store(in_order, request, session, row_id)
    await in_order.link_all()

    shuffled = MemoryHistory()
    random.Random(seed).shuffle(requests)
    for row_id, request in requests:
        store(shuffled, request, session, row_id)
        await shuffled.link_all()

    assert {i: shuffled.link_of(i) for i, _ in requests} == {i: in_order.link_of(i) for i, _ in requests}
