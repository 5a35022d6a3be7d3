import json

from nexus.domain.slack_message import (
    Conversation,
    Problem,
    SlackTarget,
    conversation_payload,
    cut,
    escape,
    key_hint,
    problem_payload,
    webhook_allowed,
)

TARGET = SlackTarget(webhook_url="https://hooks.slack.com/services/T/B/secret")


def turn(**changes: object) -> Conversation:
    fields: dict[str, object] = {
        "domain": "team.example.com",
        "request_id": "r-1",
        "user_text": "hi",
        "reply_text": "hello",
        "tools": [],
        "model": "claude-sonnet-5",
        "key_hint": "…abcd",
        "input_tokens": 1200,
        "output_tokens": 34,
    }
    return Conversation(**(fields | changes))  # type: ignore[arg-type]


def test_escaping_leaves_no_markup_slack_would_act_on() -> None:
    assert escape("<!here> a & b <@U1|x> <https://evil|click>") == (
        "&lt;!here&gt; a &amp; b &lt;@U1|x&gt; &lt;https://evil|click&gt;"
    )


def test_cut_keeps_twenty_lines_and_the_character_limit() -> None:
    text = "\n".join(str(n) for n in range(30))
    assert cut(text, lines=20).split("\n") == [*map(str, range(20)), "…"]
    assert cut("x" * 5000) == "x" * 2999 + "…"
    assert cut("short", lines=20) == "short"


def test_a_conversation_message_escapes_after_cutting_and_stays_within_slack_limits() -> None:
    payload = conversation_payload(TARGET, turn(user_text="<" * 5000, reply_text="&\n" * 100, tools=["Read", "Bash"]))
    sections = [block["text"]["text"] for block in payload["blocks"] if block["type"] == "section"]
    assert all(len(text) <= 3000 for text in sections)
    assert "<" not in "".join(sections)
    assert sections[2] == "*Tools:* Read, Bash"
    footer = payload["blocks"][-1]["elements"][0]["text"]
    assert footer == "*team.example.com* · claude-sonnet-5 · key …abcd · 1,200 in / 34 out tokens · `r-1`"
    assert "channel" not in payload
    assert payload["unfurl_links"] is False
    assert "secret" not in json.dumps(payload), "the webhook is never part of the message"


def test_a_problem_says_how_many_like_it_were_held_back() -> None:
    problem = Problem(
        kind="upstream_error", domain="d", request_id="r-9", detail="POST /v1/messages answered 529", suppressed=3
    )
    payload = problem_payload(SlackTarget(webhook_url="https://x", channel="#ops"), problem)
    assert payload["channel"] == "#ops"
    text = json.dumps(payload)
    assert "Upstream error" in text
    assert "r-9" in text
    assert "3 more like it in the last minute not sent" in text


def test_key_hints_and_allowed_webhooks() -> None:
    assert key_hint("sk-ant-api03-abcdefgh1234") == "…1234"
    assert key_hint("short") is None
    assert key_hint(None) is None
    assert webhook_allowed("https://hooks.slack.com/services/x")
    assert webhook_allowed("http://127.0.0.1:8080/services/x")
    assert not webhook_allowed("http://hooks.slack.com/services/x")
    assert not webhook_allowed("ftp://127.0.0.1/x")
