"""The message hash of a request and of its prefixes (reference §4.2 with the §4.11 fixes).

A conversation is a chain of requests: each turn resends the previous request's messages plus
the assistant's answer and the next user message. So the hash of a request's first ``n - 2``
messages equals the hash of its parent's messages, which is how a child finds its parent.

Rules, in order:
1. Only ``user`` and ``assistant`` messages count: Claude Code 2.1 injects ``role: system``
   messages that change between turns.
2. De-duplication (a claude-code-action bug resends tool calls): the first occurrence of each
   ``tool_use`` id and each ``tool_result`` id survives; a message that lost any item is dropped
   whole, and the ids it introduced still count as seen.
3. Each message contributes ``role + "\\n" + normalised content + "\\n"`` to a SHA-256.

Deliberate difference from the original: ``thinking`` and ``redacted_thinking`` blocks are left
out entirely (the original hashed their type and position). Clients may drop or redact earlier
turns' thinking, which must not break the chain; the blocks carry no identity of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from nexus.domain.conversation.text import js_escape_surrogates, js_trim, js_utf8, strip_system_reminders

CONVERSATION_ROLES = frozenset({"user", "assistant"})
_IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class MessageHashes(msgspec.Struct, frozen=True):
    """Hashes of a request's conversation messages (lowercase hex SHA-256).

    ``current`` covers all ``count`` messages, ``parent`` the first ``count - 2`` (when
    ``count >= 3``) and ``grandparent`` the first ``count - 4`` (when ``count > 4``).
    """

    current: str
    parent: str | None
    grandparent: str | None
    count: int


def conversation_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """The messages that make up the conversation: user and assistant ones, de-duplicated."""
    kept = [m for m in messages if isinstance(m, dict) and m.get("role") in CONVERSATION_ROLES]
    return _deduplicated(kept)


def message_hashes(messages: Sequence[Any]) -> MessageHashes | None:
    """The hashes of a request's ``messages``; None when it has no user or assistant message."""
    return conversation_hashes(conversation_messages(messages))


def conversation_hashes(conversation: Sequence[dict[str, Any]]) -> MessageHashes | None:
    """The hashes of messages already reduced by :func:`conversation_messages`."""
    count = len(conversation)
    if count == 0:
        return None
    digest = hashlib.sha256()
    parent = grandparent = None
    for position, message in enumerate(conversation):
        if position == count - 4 and count > 4:
            grandparent = digest.hexdigest()
        if position == count - 2 and count >= 3:
            parent = digest.hexdigest()
        digest.update(js_utf8(f"{message.get('role')}\n{normalise_content(message.get('content'))}\n"))
    return MessageHashes(current=digest.hexdigest(), parent=parent, grandparent=grandparent, count=count)


def normalise_content(content: Any) -> str:
    """The content's identity: text without reminders, tools by id and input, images by digest."""
    if isinstance(content, str):
        text = js_trim(strip_system_reminders(content)).replace("\r\n", "\n")
        return f"[0]text:{text}" if text else ""
    if not isinstance(content, list):
        return ""
    items: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in _IGNORED_BLOCKS:
            continue
        if kind == "text":
            text = js_trim(strip_system_reminders(_str(block.get("text")))).replace("\r\n", "\n")
            if text:
                items.append(f"[{len(items)}]text:{text}")
            continue
        items.append(f"[{len(items)}]{_normalise_block(kind, block)}")
    return "\n".join(items)


def js_json(value: Any) -> str:
    """``JSON.stringify`` of a parsed value: compact, key order kept, non-ASCII unescaped
    (but lone surrogates, which it escapes)."""
    return js_escape_surrogates(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_js_number))


def _js_number(value: object) -> None:
    """A number ``json_text`` gave as ``Decimal`` (past a double's range, or an integer of
    thousands of digits): JavaScript reads it as ±Infinity, which ``JSON.stringify`` writes as
    ``null``. Written so, a tool call holding one hashes instead of failing the recording."""
    if isinstance(value, Decimal):
        return
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _normalise_block(kind: Any, block: dict[str, Any]) -> str:
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            return "image:no-source"
        data = _str(source.get("data")) or _str(source.get("url")) or _str(source.get("file_id"))
        return f"image:{_str(source.get('media_type'))}:{hashlib.sha256(js_utf8(data)).hexdigest()}"
    if kind == "tool_use":
        return f"tool_use:{_str(block.get('name'))}:{_str(block.get('id'))}:{js_json(block.get('input'))}"
    if kind == "tool_result":
        result = block.get("content")
        if isinstance(result, str):
            body = strip_system_reminders(result)
        elif isinstance(result, list):
            body = js_json(result)
        else:
            body = ""
        return f"tool_result:{_str(block.get('tool_use_id'))}:{body}"
    return f"{kind}:unknown"


def _deduplicated(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen_uses: set[str] = set()
    seen_results: set[str] = set()
    kept: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            kept.append(message)
            continue
        duplicate = False
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                seen = seen_uses
                key = _str(block.get("id"))
            elif block.get("type") == "tool_result":
                seen = seen_results
                key = _str(block.get("tool_use_id"))
            else:
                continue
            if key in seen:
                duplicate = True
            else:
                seen.add(key)
        if not duplicate:
            kept.append(message)
    return kept


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
