"""The blocks of a stored answer as a transcript shows them: its text as Markdown, thinking and
tool calls folded in ``<details>`` (no script needed to open them), an error as its message.

What comes in was cut by the query (``REPLY_BLOCK_CHARS``): a cut block says so and the
request page has all of it. Text goes through the sanitizing Markdown renderer, everything
else is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from markupsafe import Markup

from nexus.application.ports.conversation_queries import ReplyBlock
from nexus.entrypoints.dashboard.render.markdown import render_markdown

__all__ = ["render_reply"]

_TOOL_CALLS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def render_reply(blocks: Sequence[ReplyBlock], *, error: str | None = None) -> Markup:
    parts = [_block(block) for block in blocks]
    if error:
        parts.append(Markup('<p class="block block-error error-message">{}</p>').format(error))
    return Markup().join(parts)


def _block(block: ReplyBlock) -> Markup:
    cut = _cut_note(block)
    if block.kind == "text":
        if not block.text.strip():
            return Markup()
        return Markup('<div class="block block-text markdown">{}{}</div>').format(render_markdown(block.text), cut)
    if block.kind == "thinking":
        return _folded(
            "thinking", "Thinking", Markup('<div class="markdown">{}</div>').format(render_markdown(block.text)), cut
        )
    if block.kind == "redacted_thinking":
        return _folded(
            "thinking", "Redacted thinking", Markup('<p class="media-placeholder">Encrypted (not shown)</p>'), Markup()
        )
    if block.kind in _TOOL_CALLS:
        title = f"Tool call: {block.name or '?'}"
        return _folded("tool-use", title, Markup('<pre class="json">{}</pre>').format(_json(block)), cut)
    title = f"Block: {block.kind or '?'}"
    return _folded("unknown", title, Markup('<pre class="json">{}</pre>').format(block.text), cut)


def _folded(kind: str, title: str, body: Markup, cut: Markup) -> Markup:
    return Markup('<details class="block block-{}"><summary class="block-title">{}</summary>{}{}</details>').format(
        kind, title, body, cut
    )


def _json(block: ReplyBlock) -> str:
    """A tool call's input, indented when it arrived whole."""
    if block.length > len(block.text):
        return block.text
    try:
        return json.dumps(json.loads(block.text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return block.text


def _cut_note(block: ReplyBlock) -> Markup:
    if block.length <= len(block.text):
        return Markup()
    return Markup('<p class="truncated">The first {:,} of {:,} characters: the request page has all of it.</p>').format(
        len(block.text), block.length
    )
