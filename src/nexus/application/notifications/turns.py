"""What a notification says about an exchange: the user's words, Claude's reply, the tools."""

from __future__ import annotations

from typing import Any

import msgspec

from nexus.domain import json_text

_REMINDER = "<system-reminder>"


class _Message(msgspec.Struct):
    role: Any = None
    content: msgspec.Raw = msgspec.Raw(b"null")


class _Body(msgspec.Struct):
    messages: list[_Message] = []


# Only the messages' roles are read; the system prompt, the tools and every content but the
# one wanted stay unparsed (a Claude Code body is ~200 KB, and this runs for each exchange).
_decode_body = msgspec.json.Decoder(_Body).decode


def last_user_text(request_body: bytes | None) -> str:
    """The text of the last user message that has any (a tool turn's results are no words of
    the user's), without Claude Code's injected reminders; "" when there is none."""
    if not request_body:
        return ""
    try:
        messages = _decode_body(request_body).messages
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _last_user_text_lenient(request_body)
    for message in reversed(messages):
        if message.role == "user":
            try:
                content = json_text.loads(bytes(message.content))
            except ValueError:
                continue
            if text := _text_of(content):
                return text
    return ""


def _last_user_text_lenient(request_body: bytes) -> str:
    """The same from a body the typed reader refuses (a lone surrogate, an odd shape)."""
    try:
        body = json_text.loads(request_body)
    except ValueError:
        return ""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user" and (text := _text_of(message.get("content"))):
            return text
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return ""
    texts = [
        block["text"].strip()
        for block in content
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    ]
    # Claude Code wraps the typed text between context blocks (the original drops the first
    # and last of more than two); reminders are marked, so they are dropped wherever they are.
    if len(texts) > 2:
        texts = texts[1:-1]
    return "\n".join(text for text in texts if text and not text.startswith(_REMINDER))


def reply_of(message: Any) -> tuple[str, list[str]]:
    """Claude's text and the names of the tools it called, from a response message."""
    content = message.get("content") if isinstance(message, dict) else None
    texts: list[str] = []
    tools: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            tools.append(block["name"])
    return "\n".join(texts).strip(), tools
