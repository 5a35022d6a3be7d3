"""The pure conversation rules: system hash, reminders, sub-agent calls, compaction keys, branch names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from nexus.domain.conversation.branches import branch_kind, compact_branch, edit_branch, subtask_number
from nexus.domain.conversation.compaction import canonical, continuation_key, summarises, summary_matches
from nexus.domain.conversation.message_hash import message_hashes, normalise_content
from nexus.domain.conversation.subagents import agent_calls, first_prompt_text, prompt_key
from nexus.domain.conversation.system_hash import system_hash
from nexus.domain.conversation.text import js_trim, strip_system_reminders

BILLING = "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli; cch=00000;"
CLI = "You are Claude Code, Anthropic's official CLI for Claude."
AGENT = "You are an agent for Claude Code, Anthropic's official CLI for Claude. Search the code."


def blocks(*texts: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": text} for text in texts]


def test_the_billing_header_does_not_change_the_system_hash_in_either_form() -> None:
    prompt = "You help with spreadsheets.\nBe brief."
    assert system_hash(blocks(BILLING, prompt)) == system_hash(blocks(prompt)) == system_hash(prompt)
    assert system_hash(f"{BILLING}\n{prompt}") == system_hash(prompt)
    other_release = BILLING.replace("2.1.330", "2.1.331")
    assert system_hash(blocks(other_release, prompt)) == system_hash(blocks(BILLING, prompt))


def test_git_status_and_other_volatile_sections_do_not_change_the_system_hash() -> None:
    base = "You help with the repository.\n\n"
    one = base + "gitStatus: on main\nStatus:\nM a.py\n\nRecent commits:\nabc fix"
    two = base + "gitStatus: on feature\nStatus:\nM b.py\n"
    assert system_hash(one) == system_hash(two) == system_hash(base)


def test_claude_code_prompts_hash_by_their_marker_and_sub_agents_apart() -> None:
    main_a = system_hash(blocks(BILLING, CLI, "You are an interactive CLI tool ... today is Monday"))
    main_b = system_hash(blocks(CLI, "You are an interactive CLI tool ... today is Tuesday"))
    sub_agent = system_hash(blocks(BILLING, CLI, AGENT))
    assert main_a == main_b
    assert sub_agent != main_a
    assert system_hash("You write poems.") != system_hash("You write limericks.")


def test_no_prompt_or_only_a_billing_header_has_no_system_hash() -> None:
    assert system_hash(None) is None
    assert system_hash([]) is None
    assert system_hash(blocks(BILLING)) is None
    assert system_hash("  \n ") is None


def test_reminders_are_removed_with_the_white_space_before_them_whatever_the_case() -> None:
    assert strip_system_reminders("Fix it. \n<system-reminder>todo: x</system-reminder>") == "Fix it."
    assert strip_system_reminders("<SYSTEM-REMINDER>a\nb</System-Reminder>Go") == "Go"
    assert strip_system_reminders("keep <system-reminder> never closed") == "keep <system-reminder> never closed"
    assert strip_system_reminders("no tags at all ") == "no tags at all "


def test_trim_follows_javascript_including_the_byte_order_mark() -> None:
    assert js_trim("\ufeff\u00a0 text \u2028") == "text"
    assert "\ufeff x".strip() != "x", "Python's own strip keeps U+FEFF"


def test_string_and_block_content_hash_alike_and_an_all_reminder_string_is_empty() -> None:
    as_string = [{"role": "user", "content": "<system-reminder>r</system-reminder>\nHello"}]
    as_blocks = [{"role": "user", "content": blocks("<system-reminder>r</system-reminder>", "Hello")}]
    assert message_hashes(as_string) == message_hashes(as_blocks)
    assert normalise_content("<system-reminder>only</system-reminder>") == ""


def test_prefix_hashes_cover_n_minus_2_and_n_minus_4_messages() -> None:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(5)]
    hashes = message_hashes(turns)
    assert hashes is not None
    assert hashes.count == 5
    assert hashes.parent == message_hashes(turns[:3]).current  # type: ignore[union-attr]
    assert hashes.grandparent == message_hashes(turns[:1]).current  # type: ignore[union-attr]
    assert message_hashes(turns[:2]).parent is None  # type: ignore[union-attr]
    assert message_hashes([{"role": "system", "content": "only system"}]) is None


def test_agent_and_task_calls_are_sub_agent_launches_in_order() -> None:
    response = {
        "content": [
            {"type": "text", "text": "Launching."},
            {"type": "tool_use", "id": "t1", "name": "Task", "input": {"prompt": " Find files ", "description": "d"}},
            {"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "/x"}},
            {"type": "tool_use", "id": "t3", "name": "Agent", "input": {"prompt": "Run tests"}},
        ]
    }
    calls = agent_calls(response)
    assert [(c.id, c.name, c.position, c.description) for c in calls] == [
        ("t1", "Task", 1, "d"),
        ("t3", "Agent", 2, None),
    ]
    assert calls[0].prompt_key == prompt_key("Find files")
    start = [{"role": "user", "content": blocks("<system-reminder>r</system-reminder>", "Find files")}]
    assert prompt_key(first_prompt_text(start) or "") == calls[0].prompt_key
    assert first_prompt_text([*start, {"role": "assistant", "content": "x"}]) is None


SUMMARY = "1. Primary Request and Intent:\n   The user wants the retries configurable.\n" + "   - detail\n" * 20


@pytest.mark.parametrize(
    "continuation",
    [
        "This session is being continued from a previous conversation that ran out of context. The conversation"
        f" is summarized below:\nAnalysis:\nI reviewed the code.\n\nSummary:\n{SUMMARY}.\nPlease continue the"
        " conversation from where we left it off.",
        "This session is being continued from a previous conversation that ran out of context. The summary below"
        f" covers the earlier portion of the conversation.\n\nSummary:\n{SUMMARY}\n\nIf you need specific details"
        " from before compaction, read the transcript.\nContinue the conversation from where it left off.",
    ],
    ids=["pre-2.1", "2.1"],
)
def test_a_continuation_summary_is_found_in_the_summarising_response(continuation: str) -> None:
    response = f"<analysis>\nI reviewed the code.\n</analysis>\n\n<summary>\n{SUMMARY}</summary>"
    key = continuation_key([{"role": "user", "content": continuation}])
    assert key is not None
    assert "please continue" not in key
    assert "if you need specific details" not in key
    assert summary_matches(key, response)
    assert not summary_matches(key, response.replace("retries", "timeouts"))
    assert not summary_matches(key[:50], response), "too short to link on text alone"


def test_compaction_requests_are_recognised_by_prompt_or_instruction() -> None:
    instruction = [{"role": "user", "content": "Your task is to create a detailed summary of the conversation so far."}]
    assert summarises("", instruction)
    assert summarises("You are a helpful AI assistant tasked with summarizing conversations.", [])
    assert not summarises(CLI, [{"role": "user", "content": "Summarise the README"}])
    assert canonical("<summary>\nSummary:\n  A  B </summary>") == "a b"


def test_branch_names_are_utc_and_unique_within_a_conversation() -> None:
    local = datetime(2026, 11, 23, 17, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert edit_branch(local) == "branch_20261123150405"
    assert edit_branch(local, {"branch_20261123150405"}) == "branch_20261123150405_2"
    assert compact_branch(local.astimezone(UTC)) == "compact_150405"
    assert compact_branch(local, {"compact_150405", "compact_150405_2"}) == "compact_150405_3"
    assert [branch_kind(b) for b in ("main", "branch_1", "subtask_3", "compact_010203")] == [
        "main", "branch", "subtask", "compact",
    ]  # fmt: skip
    assert (subtask_number("subtask_12"), subtask_number("subtask_x"), subtask_number(None)) == (12, None, None)


def test_lone_surrogates_hash_as_node_js_hashes_them() -> None:
    # Claude Code cuts strings inside emoji; the original (Node.js) hashes such a string as UTF-8
    # with U+FFFD in place, and JSON.stringify escapes it. The value was computed with Node 20:
    #   h.update('user\n[0]text:hi \ud83d\n')
    #   h.update('assistant\n[0]tool_use:Read:t1:' + JSON.stringify({p: 'x\udc00'}) + '\n')
    messages = [
        {"role": "user", "content": "hi \ud83d"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"p": "x\udc00"}}]},
    ]
    hashes = message_hashes(messages)
    assert hashes is not None
    assert hashes.current == "9c8a5ed2f7d2d8ca84a24f2f5b9a925a5e272f7a124c59039d5fd4e82c4b3a74"
    assert prompt_key("Explore \ud83d") == prompt_key("Explore \ufffd")
    assert system_hash("You are Claude \udc00 and more") is not None


def test_a_number_past_a_double_is_normalised_as_javascript_writes_it() -> None:
    # json_text reads 1e400 as a Decimal, which json.dumps refused: one such tool input
    # failed the whole recording with a TypeError (fuzzing). JavaScript reads it as Infinity,
    # and JSON.stringify(Infinity) is null.
    block = {"type": "tool_use", "id": "t", "name": "Bash", "input": {"n": Decimal("1e400"), "m": [Decimal("-1e999")]}}
    assert normalise_content([block]) == '[0]tool_use:Bash:t:{"n":null,"m":[null]}'
