"""A stored answer's blocks as the conversation transcript shows them."""

from __future__ import annotations

from nexus.application.ports.conversation_queries import ReplyBlock
from nexus.entrypoints.dashboard.render.transcript import render_reply

XSS = "<script>alert(1)</script>"


def block(kind: str, text: str, *, name: str | None = None, length: int | None = None) -> ReplyBlock:
    return ReplyBlock(kind=kind, text=text, name=name, length=len(text) if length is None else length)


def test_text_is_markdown_and_thinking_and_tool_calls_are_folded() -> None:
    html = render_reply([
        block("thinking", "Let me **think**."),
        block("text", "I'll read `config.toml`."),
        block("tool_use", '{"file_path": "/srv/app/config.toml"}', name="Read"),
    ])  # fmt: skip
    assert html.index("block-thinking") < html.index("block-text") < html.index("block-tool-use")
    assert '<details class="block block-thinking"><summary class="block-title">Thinking</summary>' in html
    assert "<strong>think</strong>" in html
    assert "<code>config.toml</code>" in html, "the text as Markdown, shown open"
    assert '<details class="block block-tool-use"><summary class="block-title">Tool call: Read</summary>' in html
    assert "{\n  &#34;file_path&#34;: &#34;/srv/app/config.toml&#34;\n}" in html, "a whole input, indented"


def test_a_cut_block_says_so_and_an_error_shows_its_message() -> None:
    html = render_reply([block("tool_use", '{"content": "abc', name="Write", length=9000)], error="Overloaded")
    assert "{&#34;content&#34;: &#34;abc" in html, "a cut input as it came"
    assert "The first 16 of 9,000 characters: the request page has all of it." in html
    assert '<p class="block block-error error-message">Overloaded</p>' in html


def test_nothing_from_traffic_runs() -> None:
    html = render_reply(
        [block("text", XSS), block("tool_use", XSS, name=XSS), block(XSS, XSS), block("thinking", XSS)], error=XSS
    )
    assert "<script" not in html
    assert html.count("&lt;script&gt;") == 7, "each text, the tool name and the unknown kind, escaped"
    assert render_reply([block("text", "  \n")]) == "", "an empty text block shows nothing"
