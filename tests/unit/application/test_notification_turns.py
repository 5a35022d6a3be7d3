import json

from nexus.application.notifications.turns import last_user_text, reply_of


def body(*messages: dict[str, object]) -> bytes:
    return json.dumps({"model": "m", "messages": list(messages)}).encode()


def test_the_last_user_words_skip_tool_turns_and_claude_code_reminders() -> None:
    typed = {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": "Fix the build"},
            {"type": "text", "text": "<system-reminder>todo list</system-reminder>"},
        ],
    }
    tool_turn = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
    assert last_user_text(body(typed, {"role": "assistant", "content": "…"}, tool_turn)) == "Fix the build"
    assert last_user_text(body({"role": "user", "content": "  plain  "})) == "plain"
    assert last_user_text(b"{not json") == ""
    assert last_user_text(None) == ""


def test_the_reply_is_its_text_and_the_tools_it_called() -> None:
    message = {
        "content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "t1", "name": "Read", "input": {}},
            {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
        ]
    }
    assert reply_of(message) == ("Reading it.", ["Read", "Bash"])
    assert reply_of(None) == ("", [])
