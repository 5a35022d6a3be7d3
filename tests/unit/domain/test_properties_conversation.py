"""Properties of conversation hashing: total on any JSON, deterministic, blind to exactly what
the rules say carries no identity (reference §4.2, §4.3 with the §4.11 fixes), and prefix-stable,
which is what lets a request find its parent."""

from __future__ import annotations

import copy
import re
import string
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.domain.conversation.facts import LinkFacts, facts_from_body, link_facts
from nexus.domain.conversation.message_hash import (
    MessageHashes,
    conversation_hashes,
    conversation_messages,
    message_hashes,
)
from nexus.domain.conversation.system_hash import MARKERS, system_hash
from nexus.domain.conversation.text import JS_WHITESPACE
from nexus.domain.request_type import BILLING_HEADER_PREFIX
from tests.support.fuzzing import fuzz_settings
from tests.support.json_strategies import (
    BLOCK,
    CONVERSATION_MESSAGE,
    JSON,
    MESSAGES,
    RICH_TEXT,
    SYSTEM,
    THINKING,
    spelled_bodies,
)

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
WHITESPACE = st.text(st.sampled_from(JS_WHITESPACE), max_size=4)
# Text that cannot meet a reminder tag or a volatile section by accident (no ``<``, no ``:``).
PLAIN = st.text(st.characters(exclude_characters="<:", exclude_categories=["Cs"]), max_size=30)
REMINDER = st.builds(
    lambda case, body: f"<{case}>{body}</{case}>",
    st.sampled_from(["system-reminder", "SYSTEM-REMINDER", "System-Reminder"]),
    PLAIN,
)
NOT_CONVERSATION = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "tool", "", "developer"]), "content": JSON}),
    st.fixed_dictionaries({"content": JSON}),
    st.one_of(st.none(), st.integers(), RICH_TEXT, st.lists(JSON, max_size=2)),
)


def hashes(messages: list[Any]) -> MessageHashes | None:
    return message_hashes(copy.deepcopy(messages))


def insert(items: list[Any], extra: list[Any], positions: list[int]) -> list[Any]:
    """``items`` with each of ``extra`` inserted at one of ``positions`` (taken modulo the length)."""
    result = list(items)
    for item, position in zip(extra, positions, strict=False):
        result.insert(position % (len(result) + 1), item)
    return result


@fuzz_settings(120)
@given(MESSAGES)
def test_any_messages_hash_without_raising_and_always_alike(messages: list[Any]) -> None:
    first = hashes(messages)
    assert first == hashes(messages)
    if first is None:
        assert conversation_messages(messages) == []
        return
    assert first.count == len(conversation_messages(messages))
    for digest in (first.current, first.parent, first.grandparent):
        assert digest is None or HEX_DIGEST.fullmatch(digest)
    assert (first.parent is not None) == (first.count >= 3)
    assert (first.grandparent is not None) == (first.count > 4)


@fuzz_settings(100)
@given(st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=9))
def test_the_parent_hash_is_the_hash_of_the_conversation_two_messages_back(conversation: list[Any]) -> None:
    reduced = conversation_messages(copy.deepcopy(conversation))
    full = conversation_hashes(reduced)
    # A message repeating one tool id within itself is a resend and dropped whole (§4.2), so
    # even the first message may go.
    assume(full is not None)
    assert full is not None
    count = len(reduced)
    if count >= 3:
        parent = conversation_hashes(reduced[: count - 2])
        assert parent is not None
        assert full.parent == parent.current
    if count > 4:
        grandparent = conversation_hashes(reduced[: count - 4])
        assert grandparent is not None
        assert full.grandparent == grandparent.current
    # The reduction is prefix-stable: a shorter request reduces to a prefix of the longer one's.
    for cut in range(len(conversation) + 1):
        assert (
            conversation_messages(copy.deepcopy(conversation[:cut]))
            == reduced[: len(conversation_messages(conversation[:cut]))]
        )


@fuzz_settings(80)
@given(
    MESSAGES, st.lists(NOT_CONVERSATION, min_size=1, max_size=4), st.lists(st.integers(0, 20), min_size=4, max_size=4)
)
def test_messages_other_than_user_and_assistant_change_nothing(
    messages: list[Any], others: list[Any], positions: list[int]
) -> None:
    assert hashes(insert(messages, others, positions)) == hashes(messages)


@fuzz_settings(120)
@given(
    st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=6),
    st.integers(0, 5),
    st.lists(
        st.one_of(
            THINKING,
            st.none(),
            st.integers(),
            RICH_TEXT,  # not a block at all
            st.builds(lambda pad, reminder: {"type": "text", "text": pad + reminder + pad}, WHITESPACE, REMINDER),
            st.builds(lambda pad: {"type": "text", "text": pad}, WHITESPACE),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(0, 10), min_size=4, max_size=4),
)
def test_thinking_empty_text_and_non_blocks_change_nothing(
    conversation: list[dict[str, Any]], which: int, noise: list[Any], positions: list[int]
) -> None:
    message = conversation[which % len(conversation)]
    if isinstance(message["content"], str):
        # A string is one text block (as the next test shows): noise goes into that block's list.
        message_as_list = {**message, "content": [{"type": "text", "text": message["content"]}]}
    else:
        message_as_list = message
    noisy = {**message_as_list, "content": insert(message_as_list["content"], noise, positions)}
    changed = [noisy if m is message else m for m in conversation]
    assert hashes(changed) == hashes(conversation)


@fuzz_settings(120)
@given(st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=5), st.integers(0, 4), RICH_TEXT)
def test_a_string_content_hashes_as_one_text_block(conversation: list[dict[str, Any]], which: int, text: str) -> None:
    index = which % len(conversation)
    as_string = [*conversation[:index], {**conversation[index], "content": text}, *conversation[index + 1 :]]
    as_block = [*conversation[:index], {**conversation[index], "content": [{"type": "text", "text": text}]},
                *conversation[index + 1 :]]  # fmt: skip
    assert hashes(as_string) == hashes(as_block)


@fuzz_settings(200)
@given(
    st.lists(PLAIN.filter(lambda line: "\r" not in line), min_size=1, max_size=5),
    WHITESPACE,
    WHITESPACE,
    st.booleans(),
    st.sampled_from(["user", "assistant"]),
)
def test_surrounding_white_space_and_crlf_line_ends_change_nothing(
    lines: list[str], before: str, after: str, as_block: bool, role: str
) -> None:
    def message(text: str) -> dict[str, Any]:
        return {"role": role, "content": [{"type": "text", "text": text}] if as_block else text}

    plain = "\n".join(lines)
    assert hashes([message(before + "\r\n".join(lines) + after)]) == hashes([message(plain)])


@fuzz_settings(200)
@given(PLAIN, st.lists(REMINDER, min_size=1, max_size=3), st.data(), st.sampled_from(["string", "text", "tool_result"]))
def test_system_reminders_change_nothing(text: str, reminders: list[str], data: st.DataObject, where: str) -> None:
    # A reminder goes with the white space before it, so cut where there is none in the text
    # and put some of our own there.
    cuts = [0, *(i for i in range(1, len(text) + 1) if text[i - 1] not in JS_WHITESPACE)]
    reminded = text
    for bare in reminders:
        reminder = data.draw(WHITESPACE) + bare
        cut = data.draw(st.sampled_from(cuts))
        reminded = reminded[:cut] + reminder + reminded[cut:]
        cuts = [c if c <= cut else c + len(reminder) for c in cuts]

    def message(body: str) -> dict[str, Any]:
        if where == "string":
            return {"role": "user", "content": body}
        if where == "text":
            return {"role": "user", "content": [{"type": "text", "text": body}]}
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": body}]}

    assert hashes([message(reminded)]) == hashes([message(text)])


@fuzz_settings(80)
@given(st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=6), st.data())
def test_a_resent_tool_call_or_result_is_dropped_whole(conversation: list[dict[str, Any]], data: st.DataObject) -> None:
    reduced = conversation_messages(copy.deepcopy(conversation))
    seen = [
        block
        for message in reduced
        if isinstance(message["content"], list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result")
    ]
    assume(seen)
    resent = copy.deepcopy(data.draw(st.sampled_from(seen)))
    extra = data.draw(st.lists(BLOCK, max_size=2))
    duplicate = {"role": data.draw(st.sampled_from(["user", "assistant"])), "content": [*extra, resent]}
    assert hashes([*conversation, duplicate]) == hashes(conversation)


@fuzz_settings(120)
@given(st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=6), st.integers(0, 5))
def test_who_said_it_is_part_of_the_identity(conversation: list[dict[str, Any]], which: int) -> None:
    reduced = conversation_messages(copy.deepcopy(conversation))
    assume(reduced)
    index = which % len(reduced)
    flipped = [dict(message) for message in reduced]
    flipped[index]["role"] = "assistant" if flipped[index]["role"] == "user" else "user"
    before, after = conversation_hashes(reduced), conversation_hashes(flipped)
    assert before is not None
    assert after is not None
    assert before.current != after.current


@fuzz_settings(300)
@given(SYSTEM)
def test_any_system_prompt_hashes_without_raising_and_always_alike(system: Any) -> None:
    digest = system_hash(copy.deepcopy(system))
    assert digest == system_hash(copy.deepcopy(system))
    assert digest is None or HEX_DIGEST.fullmatch(digest)


@fuzz_settings(200)
@given(RICH_TEXT)
def test_a_system_string_hashes_as_one_text_block(text: str) -> None:
    assert system_hash(text) == system_hash([{"type": "text", "text": text}])


@fuzz_settings(200)
@given(
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": RICH_TEXT}), max_size=4),
    st.text(st.characters(exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=40),
    st.integers(0, 4),
    st.booleans(),
)
def test_the_billing_attribution_changes_nothing(
    blocks: list[dict[str, Any]], attribution: str, position: int, own_block: bool
) -> None:
    billing = f"{BILLING_HEADER_PREFIX}{attribution}"
    if own_block:
        attributed = insert(blocks, [{"type": "text", "text": billing}], [position])
    else:
        if not blocks:
            return
        first = blocks[0]
        attributed = [{**first, "text": billing + "\n" + first["text"]}, *blocks[1:]]
    assert system_hash(attributed) == system_hash(blocks)


@fuzz_settings(200)
@given(
    st.sampled_from(MARKERS),
    RICH_TEXT,
    WHITESPACE,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": PLAIN}), max_size=3),
)
def test_a_claude_code_prompt_hashes_by_its_marker_alone(
    marker: str, rest: str, pad: str, others: list[dict[str, Any]]
) -> None:
    prompt = [*others, {"type": "text", "text": pad + marker + rest}]
    assume(not any(block["text"].strip(JS_WHITESPACE).startswith(MARKERS) for block in others))
    assert system_hash(prompt) == system_hash(marker)


VOLATILE = st.one_of(
    st.builds(lambda body: f"\n<transient_context>{body}</transient_context>", PLAIN),
    st.builds(lambda body: f"\ngitStatus: {body}", RICH_TEXT),
    st.builds(lambda body: f"\nCurrent branch: {body}", PLAIN.map(lambda text: text.replace("\n", " "))),
    st.builds(lambda body: f"\nMain branch (you will usually use this for PRs): {body}", st.text(string.ascii_letters)),
    REMINDER.map(lambda reminder: "\n" + reminder),
)


@fuzz_settings(200)
@given(PLAIN.filter(lambda text: text.strip(JS_WHITESPACE)), VOLATILE)
def test_volatile_sections_of_other_prompts_change_nothing(prompt: str, volatile: str) -> None:
    assume(not prompt.strip(JS_WHITESPACE).startswith(MARKERS))
    assert system_hash(prompt + volatile) == system_hash(prompt)


@fuzz_settings(80)
@given(
    st.one_of(
        spelled_bodies(),
        st.binary(max_size=200),
        # Nesting past any decoder's stack, inside a message (where a client can put it).
        st.integers(1, 50_000).map(
            lambda depth: b'{"model":"m","messages":[{"role":"user","content":' + b"[" * depth + b"]" * depth + b"}]}"
        ),
    ),
    st.one_of(st.none(), JSON),
)
def test_link_facts_of_any_body_and_response_never_raise(body: bytes, response: Any) -> None:
    facts = facts_from_body(body, response)
    assert isinstance(facts, LinkFacts)
    assert facts == facts_from_body(body, copy.deepcopy(response))


@fuzz_settings(120)
@given(st.one_of(JSON, st.fixed_dictionaries({"messages": MESSAGES, "system": SYSTEM})), JSON)
def test_link_facts_of_any_decoded_body_never_raise(body: Any, response: Any) -> None:
    assert isinstance(link_facts(body, response), LinkFacts)


# Positive number literals JSON allows that no double holds: JavaScript reads each as Infinity.
PAST_A_DOUBLE = st.one_of(
    st.integers(400, 100_000).map(lambda exponent: f"1e{exponent}"),
    st.integers(400, 100_000).map(lambda exponent: f"2.5E+{exponent}"),
    st.integers(4_400, 6_000).map(lambda digits: "9" * digits),
)


@fuzz_settings(60)
@given(PAST_A_DOUBLE, PAST_A_DOUBLE, st.sampled_from(["tool_use", "tool_result"]))
def test_numbers_past_a_double_hash_as_javascript_reads_them(first: str, second: str, where: str) -> None:
    def body(number: str) -> bytes:
        if where == "tool_use":
            block = f'{{"type":"tool_use","id":"t","name":"Bash","input":{{"n":{number}}}}}'
        else:
            block = f'{{"type":"tool_result","tool_use_id":"t","content":[{{"type":"text","text":"x","n":{number}}}]}}'
        return f'{{"model":"m","messages":[{{"role":"assistant","content":[{block}]}}]}}'.encode()

    facts = facts_from_body(body(first), None)
    assert facts.message_hash is not None
    assert facts.message_hash == facts_from_body(body(second), None).message_hash
