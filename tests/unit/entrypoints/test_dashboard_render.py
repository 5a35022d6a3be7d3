"""The dashboard's Markdown and conversation rendering: features render, nothing executes."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import Markup

from nexus.entrypoints.dashboard.render.conversation import (
    BLOCK_LIMIT,
    MARKDOWN_LIMIT,
    Block,
    conversation_turns,
    render_conversation,
)
from nexus.entrypoints.dashboard.render.markdown import LINK_REL, render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    '"><svg onload=alert(1)>',
    "</details><script>alert(1)</script>",
    "<a href=\"javascript:alert(1)\" style='color:red'>x</a>",
    "<iframe src=javascript:alert(1)></iframe>",
]
ALLOWED_TAGS = {
    *("article", "header", "section", "div", "details", "summary", "span", "p", "pre", "code", "a", "br", "hr"),
    *("ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "em", "strong", "s"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
SAFE_SCHEMES = ("http://", "https://", "mailto:")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.opened.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self.closed.append(tag)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def shows(self, payload: str) -> bool:
        """Whether the payload is visible text, as written or inside a JSON string."""
        text = "".join(self.texts)
        return payload in text or json.dumps(payload, ensure_ascii=False)[1:-1] in text


def assert_inert(html: str) -> _Tags:
    """Only known tags, no event handler or style attribute, only http(s)/mailto links."""
    tags = _Tags()
    tags.feed(html)
    tags.close()
    assert set(tags.opened) <= ALLOWED_TAGS, set(tags.opened) - ALLOWED_TAGS
    for tag, name, value in tags.attrs:
        assert not name.startswith("on"), (tag, name)
        assert name not in ("style", "src", "srcdoc", "target", "formaction"), (tag, name)
        if name == "href":
            assert value is not None
            assert value.startswith(SAFE_SCHEMES), value
    assert "<script" not in html.lower()
    assert re.search(r"<[^>]*\b(style|on\w+)=", html) is None  # text has no "<": every "<" opens a real tag
    assert "javascript:" not in " ".join(str(value) for _, name, value in tags.attrs if name == "href")
    for tag in ("details", "pre", "div", "section", "article", "a"):
        assert tags.opened.count(tag) == tags.closed.count(tag), tag  # no payload closed our elements
    return tags


# Markdown


def test_markdown_renders_the_common_features() -> None:
    html = render_markdown(
        "# Title\n\nSome *emphasis*, **strong**, `code` and ~~gone~~.\n\n"
        "- one\n- two\n\n1. first\n\n> quoted\n\n```python\nprint('<hi>')\n```\n"
    )
    assert isinstance(html, Markup)
    for fragment in (
        "<h1>Title</h1>",
        "<em>emphasis</em>",
        "<strong>strong</strong>",
        "<code>code</code>",
        "<s>gone</s>",
        "<li>one</li>",
        "<ol>",
        "<blockquote>",
        "<pre><code class=\"language-python\">print('&lt;hi&gt;')",
    ):
        assert fragment in html
    assert_inert(html)


def test_tables_align_with_classes_not_styles() -> None:
    html = render_markdown("| a | b | c |\n|:--|--:|:-:|\n| 1 | 2 | 3 |\n")
    assert '<th class="md-align-left">a</th>' in html
    assert '<td class="md-align-right">2</td>' in html
    assert '<td class="md-align-center">3</td>' in html
    assert_inert(html)


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("[site](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&amp;c=2"),
        ("[plain](http://example.com)", "http://example.com"),
        ("<https://example.com/auto>", "https://example.com/auto"),
        ("[mail](mailto:someone@example.com)", "mailto:someone@example.com"),
        ("<someone@example.com>", "mailto:someone@example.com"),
    ],
)
def test_safe_links_survive_with_rel_and_no_target(text: str, href: str) -> None:
    html = render_markdown(text)
    assert f'href="{href}"' in html
    assert f'rel="{LINK_REL}"' in html
    assert "target=" not in html
    assert_inert(html)


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](  javascript:alert(1) )",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](/api/admin)",
        "[x](//evil.example)",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "[x](&#106;avascript:alert(1))",
    ],
)
def test_other_links_stay_text(text: str) -> None:
    html = render_markdown(text)
    assert "href" not in html
    assert_inert(html)


def test_images_are_never_loaded() -> None:
    remote = render_markdown('![a cat](https://example.com/cat.png "title")')
    assert "<img" not in remote
    assert '<a class="md-image" href="https://example.com/cat.png"' in remote
    assert "[image: a cat]" in remote
    inline = render_markdown("![pixel](data:image/png;base64,iVBORw0KGgo=)")
    assert "<img" not in inline
    assert "href" not in inline
    nested = render_markdown("[![badge](https://example.com/b.svg)](https://example.com)")
    assert nested.count("<a ") == 1
    assert '<span class="md-image">[image: badge]</span>' in nested
    for html in (remote, inline, nested):
        assert_inert(html)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_raw_html_in_markdown_is_escaped(payload: str) -> None:
    html = render_markdown(f"before {payload} after\n\n{payload}\n")
    assert assert_inert(html).shows(f"before {payload} after")
    assert "&lt;" in html or not payload.startswith("<")


# Conversations


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "You are helpful."}, {"type": "text", "text": "Be brief."}],
        "tools": [
            {"name": "Bash", "description": "Runs a command.\nMore detail.", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "messages": [
            {"role": "user", "content": "List the files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run *ls*.", "signature": "sig"},
                    {"type": "text", "text": "Running it."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt"}],
            },
        ],
    }
    body.update(overrides)
    return body


_RESPONSE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "Two files: `a.txt` and `b.txt`."}],
    "stop_reason": "end_turn",
}


def test_turns_follow_the_request_then_the_response() -> None:
    turns = conversation_turns(_request(), _RESPONSE)
    assert [(turn.role, turn.label, turn.is_response) for turn in turns] == [
        ("system", "System", False),
        ("user", "User", False),
        ("assistant", "Assistant", False),
        ("user", "User", False),
        ("assistant", "Response", True),
    ]
    system = turns[0].blocks
    assert [(block.kind, block.title, block.collapsed) for block in system] == [
        ("system", "System prompt (1/2)", True),
        ("system", "System prompt (2/2)", True),
        ("tools", "Tools (2)", True),
    ]
    assert [block.kind for block in turns[2].blocks] == ["thinking", "text", "tool_use"]
    assert turns[2].blocks[0].collapsed
    tool_use = turns[2].blocks[2]
    assert (tool_use.title, tool_use.meta) == ("Tool call: Bash", "toolu_1")
    assert "&#34;command&#34;: &#34;ls -la&#34;" in tool_use.body
    result = turns[3].blocks[0]
    assert (result.kind, result.title, result.is_error) == ("tool_result", "Tool result: Bash", False)
    assert '<pre class="tool-output">a.txt\nb.txt</pre>' in result.body
    assert turns[4].note == "stop: end_turn"
    assert "<code>a.txt</code>" in turns[4].blocks[0].body


def test_whole_conversation_markup_is_inert_and_unstyled() -> None:
    html = render_conversation(_request(), _RESPONSE)
    assert isinstance(html, Markup)
    tags = assert_inert(html)
    assert tags.opened.count("article") == 5
    assert '<details class="block block-thinking"><summary class="block-title">Thinking</summary>' in html
    assert '<ul class="tool-defs"><li><details><summary><code>Bash</code>' in html
    assert '<span class="tool-summary">Runs a command.</span>' in html


def test_a_system_prompt_string_is_one_collapsed_block() -> None:
    turns = conversation_turns({"system": "# Rules\nBe nice.", "messages": []})
    assert len(turns) == 1
    (block,) = turns[0].blocks
    assert (block.kind, block.title, block.collapsed) == ("system", "System prompt", True)
    assert "<h1>Rules</h1>" in block.body
    assert conversation_turns({"messages": [{"role": "user", "content": "hi"}]})[0].role == "user"


def _said(role: str, *content: object) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": list(content)}]}


def _places(payload: str) -> list[tuple[object, object]]:
    """The payload in every place a request or response can carry text."""
    result = {"type": "tool_result", "tool_use_id": payload, "is_error": True}
    return [
        ({"messages": [{"role": "user", "content": payload}]}, None),
        (_said("user", {"type": "text", "text": payload}), None),
        (_said("user", {"type": "text", "text": f"<system-reminder>{payload}</system-reminder>"}), None),
        (_said("assistant", {"type": "text", "text": payload}), None),
        (_said("assistant", {"type": "thinking", "thinking": payload}), None),
        (_said("assistant", {"type": "tool_use", "id": payload, "name": payload, "input": {payload: payload}}), None),
        (_said("user", {**result, "content": payload}), None),
        (_said("user", {**result, "content": [{"type": "text", "text": payload}, {"type": "x", "y": payload}]}), None),
        (_said("user", {**result, "content": json.dumps([payload])}), None),
        (_said("user", {"type": "image", "source": {"type": "url", "url": payload}}), None),
        (_said("user", {"type": "document", "title": payload, "source": {"media_type": payload}}), None),
        (_said(payload, {"type": payload, "data": payload}), None),
        ({"system": payload}, None),
        ({"system": [{"type": "text", "text": payload}]}, None),
        ({"tools": [{"name": payload, "description": payload, "input_schema": {payload: 1}}]}, None),
        ({}, {"type": "message", "content": [{"type": "text", "text": payload}], "stop_reason": payload}),
        ({}, {"type": "error", "error": {"type": payload, "message": payload}}),
        ({}, {"unexpected": payload}),
        (payload, None),
    ]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_come_out_inert_wherever_they_are(payload: str) -> None:
    for body, response in _places(payload):
        html = render_conversation(body, response)
        assert assert_inert(html).shows(payload), (body, response)


def test_system_reminders_are_split_out_and_collapsed() -> None:
    text = "Fix the bug.\n<System-Reminder>\nToday is **Monday**.\n</system-reminder>\nThanks."
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": text}]})
    assert [(block.kind, block.collapsed) for block in turn.blocks] == [
        ("text", False),
        ("reminder", True),
        ("text", False),
    ]
    assert "Fix the bug." in turn.blocks[0].body
    assert "<strong>Monday</strong>" in turn.blocks[1].body
    assert "system-reminder" not in turn.blocks[1].body
    assert turn.blocks[1].title == "System reminder"


def test_reminders_in_tool_results_follow_the_result() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_9",
        "is_error": True,
        "content": [{"type": "text", "text": "exit 1<system-reminder>note</system-reminder>"}],
    }
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": [result]}]})
    assert [block.kind for block in turn.blocks] == ["tool_result", "reminder"]
    first = turn.blocks[0]
    assert first.is_error
    assert first.title == "Tool result (error)"
    assert '<pre class="tool-output">exit 1</pre>' in first.body
    assert 'class="block block-tool-result is-error"' in first.html


def test_an_unclosed_reminder_stays_text() -> None:
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": "<system-reminder>open"}]})
    assert [block.kind for block in turn.blocks] == ["text"]
    assert "&lt;system-reminder&gt;open" in turn.blocks[0].body


def test_json_tool_output_is_pretty_printed() -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": '{"a": [1, 2], "b": "<x>"}'}
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": [result]}]})
    assert '<pre class="json">{\n  &#34;a&#34;: [\n    1,' in turn.blocks[0].body
    assert "&lt;x&gt;" in turn.blocks[0].body


def test_images_and_documents_are_described_never_embedded() -> None:
    data = base64.b64encode(b"\x89PNG" + bytes(3000)).decode()
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {
            "type": "document",
            "title": "Spec",
            "source": {"type": "base64", "media_type": "application/pdf", "data": data},
        },
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {"data": data}}]},
    ]
    turns = conversation_turns({"messages": [{"role": "user", "content": content}]})
    html = render_conversation({"messages": [{"role": "user", "content": content}]})
    assert data[:40] not in html
    assert "<img" not in html
    assert "https://example.com/cat.png" in html
    assert 'href="https://example.com/cat.png"' not in html
    assert [block.kind for block in turns[0].blocks] == ["image", "image", "document", "tool_result"]
    assert "Image: image/png, 2.9 KB (not shown)" in turns[0].blocks[0].body
    assert "Document: application/pdf, 2.9 KB, “Spec” (not shown)" in turns[0].blocks[2].body
    assert_inert(html)


def test_redacted_thinking_shows_its_size_not_its_data() -> None:
    content = [{"type": "redacted_thinking", "data": "EncryptedBlobXYZ" * 10}]
    (turn,) = conversation_turns({"messages": [{"role": "assistant", "content": content}]})
    (block,) = turn.blocks
    assert (block.kind, block.title, block.collapsed) == ("thinking", "Redacted thinking", True)
    assert "EncryptedBlobXYZ" not in block.body
    assert "160 characters" in block.body


@pytest.mark.parametrize(
    "content",
    [
        "x" * (BLOCK_LIMIT + 5000),
        [{"type": "tool_use", "id": "t", "name": "Write", "input": {"content": "y" * (BLOCK_LIMIT + 5)}}],
        [{"type": "tool_result", "tool_use_id": "t", "content": "z" * (BLOCK_LIMIT * 2)}],
    ],
)
def test_long_blocks_are_cut_with_a_marker(content: object) -> None:
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": content}]})
    (block,) = turn.blocks
    assert block.truncated
    assert '<p class="truncated">Truncated: the first 200,000 of ' in block.body
    assert len(block.body) < BLOCK_LIMIT + 1000


def test_very_long_text_is_shown_preformatted_not_as_markdown() -> None:
    text = "# Heading <b>\n" + "word " * (MARKDOWN_LIMIT // 5)
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": text}]})
    (block,) = turn.blocks
    assert block.body.startswith('<pre class="plain-text"># Heading &lt;b&gt;\n')
    assert not block.truncated


def test_the_error_response_is_the_last_turn() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    turns = conversation_turns(_request(), error)
    last = turns[-1]
    assert (last.role, last.label, last.is_response) == ("assistant", "Error", True)
    (block,) = last.blocks
    assert (block.kind, block.title, block.is_error) == ("error", "overloaded_error", True)
    assert "Overloaded" in block.body
    assert len(conversation_turns(_request(), None)) == len(turns) - 1


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize(
    ("body", "response"),
    [
        (None, None),
        ({}, None),
        ({"messages": "not a list", "system": 42, "tools": "nope"}, None),
        ({"messages": [None, 7, {"role": "user"}, {"role": "user", "content": 3}, {"content": [None, "s", {}]}]}, None),
        ("raw text body", "raw text response"),
        ({"messages": []}, {"type": "error", "error": "not a dict"}),
        ({"messages": []}, {"content": [{"type": "text", "text": None}, {"type": "image"}]}),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "[" * 5000 + "]" * 5000}]}]},
            None,
        ),
        ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": _nested(5000)}]}]}, None),
        ({"messages": [{"role": "user", "content": "> " * 5000 + "deep"}]}, None),
    ],
)
def test_odd_shapes_never_raise(body: object, response: object) -> None:
    html = render_conversation(body, response)
    assert_inert(html)


def test_unknown_blocks_are_collapsed_json() -> None:
    block = {"type": "container_upload", "file_id": "file_1"}
    (turn,) = conversation_turns({"messages": [{"role": "user", "content": [block]}]})
    (shown,) = turn.blocks
    assert (shown.kind, shown.title, shown.collapsed) == ("unknown", "Block: container_upload", True)
    assert "file_1" in shown.body


def test_block_html_escapes_titles() -> None:
    block = Block(kind="text", title="<b>x</b>", meta='"m"', body=Markup("<p>ok</p>"))
    assert block.html == (
        '<section class="block block-text"><div class="block-title">&lt;b&gt;x&lt;/b&gt;'
        ' <span class="block-meta">&#34;m&#34;</span></div><p>ok</p></section>'
    )


def test_titles_from_traffic_are_kept_short() -> None:
    call = {"type": "tool_use", "id": "i" * 500, "name": "n" * 500, "input": {}}
    (turn,) = conversation_turns({"messages": [{"role": "assistant", "content": [call]}]})
    (block,) = turn.blocks
    assert block.title == "Tool call: " + "n" * 199 + "…"
    assert block.meta is not None
    assert len(block.meta) == 200
