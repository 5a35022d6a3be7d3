"""What an analysis reads of a branch: its turns as text, secrets redacted before anything
leaves the machine, cut to a token budget by keeping its head and its tail.

Each exchange of the branch gives the user's last message (text blocks, reminders removed) and
the assistant's answer (text, and each tool call as ``[Tool use: name]``). Tool results and
file contents are not sent: the analysis is of the conversation, not of the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from nexus.domain.conversation.text import strip_system_reminders

MAX_TURN_CHARS = 50_000
CHARS_PER_TOKEN = 4  # a conservative estimate for English and code (no tokenizer is shipped)
TRUNCATION_MARKER = "[... {count} turns left out to fit the analysis budget ...]"

_SECRETS = [
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"), "[REDACTED_ANTHROPIC_KEY]"),
    (re.compile(r"cnp_[A-Za-z0-9_]{8,}"), "[REDACTED_CLIENT_KEY]"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), "[REDACTED_GITHUB_TOKEN]"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), "[REDACTED_GOOGLE_KEY]"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[REDACTED_AWS_KEY]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "[REDACTED_SLACK_TOKEN]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[REDACTED_JWT]"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[REDACTED_PRIVATE_KEY]",
    ),
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1[REDACTED]@"),  # user:password@ in URLs
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1[REDACTED]"),
    (  # key = value, the value quoted (spaces and all) or bare
        re.compile(
            r"(?i)\b((?:api[_-]?key|secret|token|password|passwd|pwd)\s*[=:]\s*)(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;]{6,})"
        ),
        r"\1[REDACTED]",
    ),
]


class Turn(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    text: str


def redact(text: str) -> str:
    """Keys, tokens, passwords and private keys replaced by a label naming what was there."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def exchange_turns(request: Any, response: Any) -> list[Turn]:
    """The user's last message of a Messages request and the assistant's answer to it."""
    turns: list[Turn] = []
    messages = request.get("messages") if isinstance(request, Mapping) else None
    users = (
        [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        if isinstance(messages, list)
        else []
    )
    if users and (text := _text(users[-1].get("content"), tools=False)):
        turns.append(Turn("user", _clean(text)))
    if isinstance(response, Mapping) and (text := _text(response.get("content"), tools=True)):
        turns.append(Turn("assistant", _clean(text)))
    return turns


def fit(turns: list[Turn], *, max_tokens: int, head: int = 5, tail: int = 20) -> list[Turn]:
    """All turns if they fit the budget; else the first ``head`` and last ``tail`` with a marker
    where turns were left out, the head shrinking first, then the tail, down to one each; then
    those two are cut (their ends kept)."""
    if _tokens(turns) <= max_tokens:
        return turns
    head = min(head, len(turns))
    tail = min(tail, len(turns) - head)
    while True:
        left_out = len(turns) - head - tail
        marker = [Turn("user", TRUNCATION_MARKER.format(count=left_out))] if left_out else []
        chosen = [*turns[:head], *marker, *turns[len(turns) - tail :]]
        if _tokens(chosen) <= max_tokens:
            return chosen
        if head > 1:
            head -= 1
        elif tail > 1:
            tail -= 1
        else:
            share = max(1, max_tokens // len(chosen) - 4)
            return [Turn(turn.role, turn.text[-share * CHARS_PER_TOKEN :]) for turn in chosen]


def _text(content: Any, *, tools: bool) -> str:
    if isinstance(content, str):
        return strip_system_reminders(content)
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(strip_system_reminders(block["text"]))
        elif tools and block.get("type") in ("tool_use", "server_tool_use", "mcp_tool_use"):
            parts.append(f"[Tool use: {block.get('name')}]")
    return "\n".join(part for part in parts if part.strip())


def _clean(text: str) -> str:
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return redact(text.strip())[:MAX_TURN_CHARS]


def _tokens(turns: Iterable[Turn]) -> int:
    return sum(len(turn.text) // CHARS_PER_TOKEN + 4 for turn in turns)
