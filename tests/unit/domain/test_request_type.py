import json
from pathlib import Path
from typing import Any

import pytest

from nexus.domain.prompt_text import PROMPT_TEXT_LENGTH
from nexus.domain.request_type import RequestReading, classify_decoded, classify_request, read_request

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "requests").glob("*.json"))
BILLING = {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3; cc_entrypoint=cli"}


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "claude-haiku-4-5", "max_tokens": 1, **fields}).encode()


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.stem)
def test_original_fixtures_classify_as_recorded(fixture: Path) -> None:
    recorded = json.loads(fixture.read_text())
    assert classify_request(json.dumps(recorded["body"]).encode()) == recorded["metadata"]["requestType"]
    assert classify_decoded(recorded["body"]) == recorded["metadata"]["requestType"]


def user(content: object) -> dict[str, object]:
    return {"role": "user", "content": content}


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"messages": [user("quota")]}, "quota", id="quota-string"),
        pytest.param({"messages": [user("  QuOtA \n")]}, "quota", id="quota-whitespace-and-case"),
        pytest.param({"messages": [user([text("quota")])]}, "quota", id="quota-array"),
        pytest.param(
            {"messages": [user([{"type": "image", "source": {}}, text(" Quota")])]},
            "quota",
            id="quota-non-text-skipped",
        ),
        pytest.param({"messages": [user([text("quo"), text("ta")])]}, "query_evaluation", id="items-joined-by-newline"),
        pytest.param(
            {"messages": [user("quota"), {"role": "assistant", "content": "x"}]},
            "quota",
            id="last-user-not-last-message",
        ),
        pytest.param({"messages": [user("quota"), user("more")]}, "query_evaluation", id="earlier-quota-ignored"),
        pytest.param({"system": [text("a"), text("b")], "messages": [user("quota")]}, "quota", id="quota-wins-first"),
        pytest.param({"messages": [user("hi")]}, "query_evaluation", id="no-system"),
        pytest.param({"system": "", "messages": [user("hi")]}, "query_evaluation", id="empty-string-system"),
        pytest.param({"system": [], "messages": [user("hi")]}, "query_evaluation", id="empty-array-system"),
        pytest.param({"system": "be brief", "messages": [user("hi")]}, "query_evaluation", id="string-system"),
        pytest.param({"system": [text("a"), text("b")], "messages": [user("hi")]}, "inference", id="two-blocks"),
        pytest.param(
            {"system": [BILLING, text("a")], "messages": [user("hi")]}, "query_evaluation", id="billing-excluded"
        ),
        pytest.param(
            {"system": [BILLING, text("a"), text("b")], "messages": [user("hi")]}, "inference", id="billing-plus-2"
        ),
        pytest.param({"system": BILLING["text"], "messages": [user("hi")]}, "query_evaluation", id="billing-string"),
        pytest.param(
            {"system": "a", "messages": [{"role": "system", "content": "b"}, user("hi")]}, "inference", id="role-system"
        ),
        pytest.param(
            {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}, user("hi")]},
            "inference",
            id="two-role-system-messages",
        ),
        pytest.param({"messages": []}, "query_evaluation", id="no-messages"),
        pytest.param({}, "query_evaluation", id="no-fields"),
    ],
)
def test_rules(fields: dict[str, Any], expected: str) -> None:
    assert classify_request(body(**fields)) == expected
    assert classify_decoded(json.loads(body(**fields))) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"null", b'{"messages": "x"}', b'{"system": 5}', b'{"messages": [{"content": [1]}]}'],
)
def test_odd_bodies_do_not_raise(raw: bytes) -> None:
    assert classify_request(raw) == "query_evaluation"


def test_odd_decoded_body_does_not_raise() -> None:
    assert classify_decoded(["not", "a", "body"]) == "query_evaluation"


def test_a_body_with_a_lone_surrogate_is_classified_like_any_other() -> None:
    body = (
        rb'{"model":"m","system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],'
        rb'"messages":[{"role":"user","content":"cut inside an emoji \ud83d"}]}'
    )
    assert classify_request(body) == "inference"


def test_a_lone_surrogate_in_a_key_classifies_like_any_unknown_field() -> None:
    # It raised UnicodeEncodeError in the recorder, which lost the exchange (fuzzing).
    body = rb'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"quota","\ud83d":1}],"\ude00":2}'
    assert classify_request(body) == "quota"


def test_a_decoded_body_with_a_lone_surrogate_classifies_as_its_bytes_do() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "quota", "\ud800": 1}]}
    assert classify_decoded(body) == classify_request(json.dumps(body).encode()) == "quota"


def test_the_last_user_message_text_is_read_with_the_type() -> None:
    reminder = {"type": "text", "text": "<system-reminder>\nToday is Monday.\n</system-reminder>"}
    messages = [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "An answer"},
        {"role": "user", "content": [reminder, {"type": "text", "text": "  Second\n\n question  "}]},
    ]
    reading = read_request(body(system=[BILLING, {"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                                messages=messages))  # fmt: skip
    assert (reading.request_type, reading.prompt_text) == ("inference", "Second question")


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"}]}], None),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "hi"),
        ([{"role": "assistant", "content": "alone"}], None),
        ([{"role": "user", "content": "x" * (PROMPT_TEXT_LENGTH + 50)}], "x" * PROMPT_TEXT_LENGTH),
        ([{"role": "user", "content": "quota"}], "quota"),
    ],
)
def test_the_prompt_text_is_what_a_preview_and_a_search_need(messages: list[Any], expected: str | None) -> None:
    assert read_request(body(messages=messages)).prompt_text == expected


def test_a_body_that_cannot_be_read_has_no_prompt_text() -> None:
    assert read_request(b"not json") == RequestReading("query_evaluation", None)
