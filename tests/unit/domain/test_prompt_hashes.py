"""Finding a rendered prompt again in a conversation's first user message."""

from __future__ import annotations

from nexus.domain.prompts import first_user_text_hashes, rendered_hash

PROMPT = "Review this Python change.\n"


def test_outer_whitespace_does_not_change_the_hash_but_any_other_character_does() -> None:
    assert rendered_hash(PROMPT) == rendered_hash("  Review this Python change.")
    assert rendered_hash(PROMPT) != rendered_hash("Review this Python change!")


def test_each_text_block_of_the_first_user_message_is_a_candidate() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nx\n</system-reminder>\n"},
                    {"type": "text", "text": "<command-name>/mcp__nexus__review</command-name>\n"},
                    {"type": "image", "source": {}},
                    {"type": "text", "text": PROMPT},
                    {"type": "text", "text": "   "},
                ],
            },
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Later text is not the start"},
        ]
    }
    hashes = first_user_text_hashes(body)
    assert len(hashes) == 3
    assert rendered_hash(PROMPT) in hashes
    assert rendered_hash("Later text is not the start") not in hashes


def test_a_plain_string_message_and_malformed_bodies() -> None:
    assert first_user_text_hashes({"messages": [{"role": "user", "content": PROMPT}]}) == [rendered_hash(PROMPT)]
    assert first_user_text_hashes({"messages": "nope"}) == []
    assert first_user_text_hashes({"messages": [{"role": "user", "content": 7}]}) == []
    assert first_user_text_hashes([]) == []
