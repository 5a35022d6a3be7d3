"""What an analysis sends: turns of a branch, secrets redacted, cut to a budget."""

from __future__ import annotations

import pytest

from nexus.domain.analysis.jobs import retry_delay_s
from nexus.domain.analysis.result import InvalidAnalysis, analysis_schema, parse_analysis
from nexus.domain.analysis.transcript import CHARS_PER_TOKEN, Turn, exchange_turns, fit, redact
from tests.support.fake_gemini import ANALYSIS


@pytest.mark.parametrize(
    ("secret", "label"),
    [
        ("sk-ant-api03-AbCdEf0123456789xyz", "[REDACTED_ANTHROPIC_KEY]"),
        ("cnp_live_team_0123456789", "[REDACTED_CLIENT_KEY]"),
        ("ghp_" + "a" * 36, "[REDACTED_GITHUB_TOKEN]"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu", "[REDACTED_GOOGLE_KEY]"),
        ("AKIAIOSFODNN7EXAMPLE", "[REDACTED_AWS_KEY]"),
        ("xoxb-1234567890-abcdefghij", "[REDACTED_SLACK_TOKEN]"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpM", "[REDACTED_JWT]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[REDACTED_PRIVATE_KEY]"),
    ],
)
def test_keys_and_tokens_are_replaced_by_what_they_were(secret: str, label: str) -> None:
    redacted = redact(f"before {secret} after")
    assert secret not in redacted
    assert redacted == f"before {label} after"


def test_passwords_in_urls_and_assignments_keep_their_context() -> None:
    assert redact("postgresql://app:hunter2secret@db:5432/x") == "postgresql://app:[REDACTED]@db:5432/x"
    assert redact("password = 'correct horse'") == "password = [REDACTED]"
    assert redact("API_KEY=abcdef123456") == "API_KEY=[REDACTED]"
    assert redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz") == "Authorization: Bearer [REDACTED]"
    assert redact("a plain sentence about tokens") == "a plain sentence about tokens"


def test_an_exchange_gives_the_last_user_text_and_the_answer_with_tool_names() -> None:
    request = {
        "messages": [
            {"role": "user", "content": "old question"},
            {"role": "assistant", "content": "old answer"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nnoise\n</system-reminder>\nFix the bug\x07"},
                    {"type": "tool_result", "tool_use_id": "t", "content": "file contents"},
                ],
            },
        ]
    }
    response = {"content": [{"type": "text", "text": "Reading it."}, {"type": "tool_use", "name": "Read", "input": {}}]}
    assert exchange_turns(request, response) == [
        Turn("user", "Fix the bug"),
        Turn("assistant", "Reading it.\n[Tool use: Read]"),
    ]
    assert exchange_turns({"messages": "x"}, None) == []


def test_a_long_branch_keeps_its_head_and_tail_with_a_marker() -> None:
    turns = [Turn("user" if n % 2 == 0 else "assistant", f"turn {n} " + "x" * 400) for n in range(40)]
    assert fit(turns, max_tokens=10**6) == turns
    kept = fit(turns, max_tokens=3000)
    assert kept[0] == turns[0]
    assert kept[-1] == turns[-1]
    marker = next(turn for turn in kept if turn.text.startswith("[..."))
    assert f"{40 - len(kept) + 1} turns left out" in marker.text
    assert sum(len(turn.text) // CHARS_PER_TOKEN + 4 for turn in kept) <= 3000
    tiny = fit(turns, max_tokens=60)
    assert len(tiny) == 3, "one head, the marker, one tail, cut"
    assert tiny[-1].text.endswith("x")


def test_the_schema_is_self_contained_and_answers_are_checked() -> None:
    schema = analysis_schema()
    assert "$ref" not in str(schema)
    assert "$defs" not in schema
    assert schema["properties"]["sentiment"] == {"enum": ["mixed", "negative", "neutral", "positive"], "type": "string"}
    assert parse_analysis({"analysis": ANALYSIS}).summary == ANALYSIS["summary"]
    with pytest.raises(InvalidAnalysis, match="sentiment"):
        parse_analysis({**ANALYSIS, "sentiment": "ecstatic"})
    with pytest.raises(InvalidAnalysis):
        parse_analysis("not json")


def test_retries_back_off_to_a_ceiling_with_jitter() -> None:
    assert retry_delay_s(1, 0.0) == 1.0
    assert retry_delay_s(2, 0.0) == 2.5
    assert retry_delay_s(9, 0.0) == 15.0
    assert retry_delay_s(1, 0.99) == pytest.approx(1.297)


@pytest.mark.parametrize(
    "answer",
    [
        "[" * 3000 + "]" * 3000,  # nesting past msgspec's stack: RecursionError
        '{"summary": "\ud800"',  # a str holding a lone surrogate, and not JSON: UnicodeEncodeError
        b'{"summary":"\xff"}',  # bytes that are no UTF-8 inside a string: UnicodeDecodeError
        {"summary": "x", "\ud800": 1},  # decoded, a key msgspec.convert could not encode
    ],
)
def test_any_model_answer_that_is_no_analysis_is_invalid(answer: object) -> None:
    # Each escaped parse_analysis and failed the analysis worker's job (fuzzing).
    with pytest.raises(InvalidAnalysis):
        parse_analysis(answer)
