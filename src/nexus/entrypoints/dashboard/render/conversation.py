"""A stored Messages request and its response as turns of blocks, ready for a template.

``conversation_turns`` reads the request body (``system``, ``messages``, ``tools``) and the
response message as they were stored, tolerating any shape: what it does not know becomes an
``unknown`` block of escaped JSON. Text goes through the sanitizing Markdown renderer, every
other value is escaped; images and documents are described, never embedded. Each block's text
is cut at ``BLOCK_LIMIT`` characters with a visible marker; text longer than ``MARKDOWN_LIMIT``
is shown preformatted instead of as Markdown (markdown-it takes up to 20 µs a character on
hostile input). Rendering is CPU-bound: call it off the event loop for big conversations.

``Block.html`` and ``Turn.html`` give the markup (``<details>`` for collapsed blocks, so no
script is needed); templates may also lay the fields out themselves, escaping ``title``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup

from nexus.entrypoints.dashboard.render.markdown import render_markdown

__all__ = [
    "BLOCK_LIMIT",
    "MARKDOWN_LIMIT",
    "Block",
    "BlockKind",
    "Role",
    "Turn",
    "conversation_turns",
    "render_conversation",
]

BLOCK_LIMIT = 200_000
MARKDOWN_LIMIT = 100_000
_REMINDER = re.compile("<system-reminder>(.*?)</system-reminder>", re.IGNORECASE | re.DOTALL)

BlockKind = Literal[
    "text",
    "reminder",
    "tool_use",
    "tool_result",
    "thinking",
    "image",
    "document",
    "system",
    "tools",
    "error",
    "unknown",
]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """One piece of a turn. ``title`` is plain text (escape it); ``body`` is safe HTML."""

    kind: BlockKind
    body: Markup
    title: str = ""
    meta: str | None = None
    collapsed: bool = False
    is_error: bool = False
    truncated: bool = False

    @property
    def css_class(self) -> str:
        return f"block block-{self.kind.replace('_', '-')}" + (" is-error" if self.is_error else "")

    @property
    def html(self) -> Markup:
        meta = Markup(' <span class="block-meta">{}</span>').format(self.meta) if self.meta else Markup()
        if self.collapsed:
            return Markup('<details class="{}"><summary class="block-title">{}{}</summary>{}</details>').format(
                self.css_class, self.title, meta, self.body
            )
        title = Markup('<div class="block-title">{}{}</div>').format(self.title, meta) if self.title else Markup()
        return Markup('<section class="{}">{}{}</section>').format(self.css_class, title, self.body)


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One message: the system prompt, a user or assistant message, or the response."""

    role: Role
    label: str
    blocks: tuple[Block, ...]
    is_response: bool = False
    note: str | None = None

    @property
    def css_class(self) -> str:
        return f"turn turn-{self.role}" + (" turn-response" if self.is_response else "")

    @property
    def html(self) -> Markup:
        note = Markup(' <span class="turn-note">{}</span>').format(self.note) if self.note else Markup()
        return Markup('<article class="{}"><header class="turn-label">{}{}</header>{}</article>').format(
            self.css_class, self.label, note, Markup().join(block.html for block in self.blocks)
        )


def render_conversation(body: object, response: object = None) -> Markup:
    return Markup().join(turn.html for turn in conversation_turns(body, response))


def conversation_turns(body: object, response: object = None) -> list[Turn]:
    """The system prompt and tools (collapsed), each message, then the response (if any)."""
    if body is None:
        turns: list[Turn] = []
    elif not isinstance(body, Mapping):
        turns = [Turn(role="user", label="Request", blocks=(_unknown(body, "Request body"),))]
    else:
        turns = _request_turns(body)
    if response is not None:
        turns.append(_response_turn(response))
    return turns


def _request_turns(body: Mapping[object, object]) -> list[Turn]:
    tool_names: dict[str, str] = {}
    turns: list[Turn] = []
    system = [*_system_blocks(body.get("system")), *_tools_blocks(body.get("tools"))]
    if system:
        turns.append(Turn(role="system", label="System", blocks=tuple(system)))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            turns.append(Turn(role="user", label="Message", blocks=(_unknown(message, "Message"),)))
            continue
        role = message.get("role")
        blocks = tuple(_content_blocks(message.get("content"), tool_names))
        if role == "assistant":
            turns.append(Turn(role="assistant", label="Assistant", blocks=blocks))
        else:
            turns.append(Turn(role="user", label="User" if role == "user" else f"Role: {_short(role)}", blocks=blocks))
    return turns


def _response_turn(response: object) -> Turn:
    if isinstance(response, Mapping) and response.get("type") == "error":
        error = response.get("error")
        error = error if isinstance(error, Mapping) else {}
        block = Block(
            kind="error",
            title=_short(error.get("type") or "error"),
            body=Markup('<p class="error-message">{}</p>').format(_cut(str(error.get("message") or ""))[0]),
            is_error=True,
        )
        return Turn(role="assistant", label="Error", blocks=(block,), is_response=True)
    if isinstance(response, Mapping) and isinstance(response.get("content"), list):
        stop = response.get("stop_reason")
        blocks = tuple(_content_blocks(response["content"], {}))
        return Turn(
            role="assistant",
            label="Response",
            blocks=blocks,
            is_response=True,
            note=f"stop: {_short(stop)}" if stop else None,
        )
    return Turn(role="assistant", label="Response", blocks=(_unknown(response, "Response"),), is_response=True)


# System prompt and tools


def _system_blocks(system: object) -> Iterator[Block]:
    if system is None or system in ("", []):
        return
    parts = system if isinstance(system, list) else [system]
    for number, part in enumerate(parts, start=1):
        title = "System prompt" if len(parts) == 1 else f"System prompt ({number}/{len(parts)})"
        text = part if isinstance(part, str) else part.get("text") if isinstance(part, Mapping) else None
        if isinstance(text, str):
            body, truncated = _markdown(text)
            yield Block(kind="system", title=title, body=body, collapsed=True, truncated=truncated)
        else:
            yield _unknown(part, title)


def _tools_blocks(tools: object) -> Iterator[Block]:
    if not isinstance(tools, list) or not tools:
        return
    items = []
    for tool in tools:
        name = _short(tool.get("name") or tool.get("type") or "?") if isinstance(tool, Mapping) else "?"
        description = tool.get("description") if isinstance(tool, Mapping) else None
        first_line = description.strip().split("\n", 1)[0][:200] if isinstance(description, str) else ""
        items.append(
            Markup(
                '<li><details><summary><code>{}</code> <span class="tool-summary">{}</span></summary>{}</details></li>'
            ).format(name, first_line, _json_pre(tool)[0])
        )
    body = Markup('<ul class="tool-defs">{}</ul>').format(Markup().join(items))
    yield Block(kind="tools", title=f"Tools ({len(tools)})", body=body, collapsed=True)


# Message content


def _content_blocks(content: object, tool_names: dict[str, str]) -> Iterator[Block]:
    if isinstance(content, str):
        yield from _text_blocks(content)
        return
    if not isinstance(content, list):
        if content is not None:
            yield _unknown(content, "Content")
        return
    for item in content:
        yield from _content_block(item, tool_names)


def _content_block(item: object, tool_names: dict[str, str]) -> Iterator[Block]:
    kind = item.get("type") if isinstance(item, Mapping) else None
    if not isinstance(item, Mapping) or not isinstance(kind, str):
        yield _unknown(item, "Unknown block")
        return
    if kind == "text":
        yield from _text_blocks(str(item.get("text") or ""))
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        yield _tool_use(item, tool_names)
    elif kind == "tool_result" or kind.endswith("_tool_result"):
        yield from _tool_result(item, tool_names)
    elif kind == "thinking":
        body, truncated = _markdown(str(item.get("thinking") or ""))
        yield Block(kind="thinking", title="Thinking", body=body, collapsed=True, truncated=truncated)
    elif kind == "redacted_thinking":
        size = len(str(item.get("data") or ""))
        body = Markup('<p class="media-placeholder">Encrypted, {:,} characters (not shown)</p>').format(size)
        yield Block(kind="thinking", title="Redacted thinking", body=body, collapsed=True)
    elif kind == "image":
        yield Block(kind="image", body=_media_placeholder(item))
    elif kind == "document":
        yield Block(kind="document", body=_media_placeholder(item))
    else:
        yield _unknown(item, f"Block: {_short(kind)}")


def _text_blocks(text: str) -> Iterator[Block]:
    """The text as Markdown, with each ``<system-reminder>`` in it as its own collapsed block."""
    for is_reminder, segment in _segments(text):
        if is_reminder:
            yield _reminder(segment)
        else:
            yield from _markdown_block(segment)


def _segments(text: str) -> Iterator[tuple[bool, str]]:
    """The text cut into ``(is_reminder, text)`` pieces, in order, reminder tags removed."""
    position = 0
    if "<system-reminder>" in text.lower():
        for reminder in _REMINDER.finditer(text):
            yield False, text[position : reminder.start()]
            yield True, reminder.group(1).strip()
            position = reminder.end()
    yield False, text[position:]


def _reminder(text: str) -> Block:
    body, truncated = _markdown(text)
    return Block(kind="reminder", title="System reminder", body=body, collapsed=True, truncated=truncated)


def _markdown_block(text: str) -> Iterator[Block]:
    if text.strip():
        body, truncated = _markdown(text)
        yield Block(kind="text", body=body, truncated=truncated)


def _tool_use(item: Mapping[object, object], tool_names: dict[str, str]) -> Block:
    name = _short(item.get("name") or "?")
    tool_id = item.get("id")
    if isinstance(tool_id, str):
        tool_names[tool_id] = name
    prefix = "Tool call" if item.get("type") == "tool_use" else "Server tool call"
    body, truncated = _json_pre(item.get("input"))
    return Block(
        kind="tool_use",
        title=f"{prefix}: {name}",
        meta=_short(tool_id) if isinstance(tool_id, str) else None,
        body=body,
        truncated=truncated,
    )


def _tool_result(item: Mapping[object, object], tool_names: dict[str, str]) -> Iterator[Block]:
    tool_id = item.get("tool_use_id")
    name = tool_names.get(tool_id) if isinstance(tool_id, str) else None
    is_error = item.get("is_error") is True
    content = item.get("content")
    parts: list[Markup] = []
    reminders: list[Block] = []
    truncated = False
    for part in content if isinstance(content, list) else [content]:
        text = _part_text(part)
        if isinstance(text, str):
            segments = list(_segments(text))
            reminders.extend(_reminder(segment) for is_reminder, segment in segments if is_reminder)
            markup, cut = _output_pre("".join(segment for is_reminder, segment in segments if not is_reminder).strip())
        elif isinstance(part, Mapping) and part.get("type") in ("image", "document"):
            markup, cut = _media_placeholder(part), False
        elif part is None:
            markup, cut = Markup('<p class="empty">(no content)</p>'), False
        else:
            markup, cut = _json_pre(part)
        parts.append(markup)
        truncated = truncated or cut
    title = "Tool result" + (f": {name}" if name else "") + (" (error)" if is_error else "")
    yield Block(
        kind="tool_result",
        title=title,
        meta=_short(tool_id) if isinstance(tool_id, str) else None,
        body=Markup().join(parts),
        is_error=is_error,
        truncated=truncated,
    )
    yield from reminders


def _part_text(part: object) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return str(part["text"])
    return None


def _media_placeholder(item: Mapping[object, object]) -> Markup:
    """What the image or document is (type, size, origin), never its content."""
    source = item.get("source")
    source = source if isinstance(source, Mapping) else {}
    facts: list[str] = []
    if isinstance(source.get("media_type"), str):
        facts.append(str(source["media_type"]))
    data = source.get("data")
    if isinstance(data, str):
        facts.append(_size(len(data) * 3 // 4 if source.get("type") == "base64" else len(data.encode())))
    elif isinstance(source.get("url"), str):
        facts.append(f"from {str(source['url'])[:300]}")
    elif isinstance(source.get("file_id"), str):
        facts.append(f"file {source['file_id']}")
    if isinstance(item.get("title"), str):
        facts.append(f"“{str(item['title'])[:200]}”")
    label = "Document" if item.get("type") == "document" else "Image"
    return Markup('<p class="media-placeholder">{}: {} (not shown)</p>').format(label, ", ".join(facts) or "?")


def _size(octets: int) -> str:
    if octets < 1024:
        return f"{octets} B"
    if octets < 1024 * 1024:
        return f"{octets / 1024:.1f} KB"
    return f"{octets / 1024 / 1024:.1f} MB"


def _unknown(value: object, title: str) -> Block:
    body, truncated = _json_pre(value)
    return Block(kind="unknown", title=title, body=body, collapsed=True, truncated=truncated)


# Escaping and cutting


def _short(value: object, limit: int = 200) -> str:
    """A title-sized piece of ``value`` (titles and labels come from traffic too)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str) -> tuple[str, bool]:
    return (text, False) if len(text) <= BLOCK_LIMIT else (text[:BLOCK_LIMIT], True)


def _marker(total: int) -> Markup:
    return Markup('<p class="truncated">Truncated: the first {:,} of {:,} characters are shown.</p>').format(
        BLOCK_LIMIT, total
    )


def _markdown(text: str) -> tuple[Markup, bool]:
    if len(text) > MARKDOWN_LIMIT:
        return _pre(text, "plain-text")
    return Markup('<div class="markdown">{}</div>').format(render_markdown(text)), False


def _pre(text: str, css_class: str) -> tuple[Markup, bool]:
    shown, truncated = _cut(text)
    html = Markup('<pre class="{}">{}</pre>').format(css_class, shown)
    return (html + _marker(len(text)), True) if truncated else (html, False)


def _json_pre(value: object) -> tuple[Markup, bool]:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except RecursionError:
        text = "(nested too deeply to show)"
    return _pre(text, "json")


def _output_pre(text: str) -> tuple[Markup, bool]:
    """Tool output as written, or pretty-printed when it is a JSON object or array."""
    if text[:1] in ("{", "[") and len(text) <= BLOCK_LIMIT:
        try:
            return _json_pre(json.loads(text))
        except (ValueError, RecursionError):
            pass
    if not text:
        return Markup('<p class="empty">(empty)</p>'), False
    return _pre(text, "tool-output")
