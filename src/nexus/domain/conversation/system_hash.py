"""The system-prompt hash (reference §4.3 with the §4.11 fixes).

It only ranks candidate parents (a parent with the same system prompt is preferred); it never
decides whether a request can link. Claude Code's prompt embeds volatile parts (git status,
dates, the per-release billing line), so a recognised Claude Code prompt is hashed by its
marker alone, and other prompts without their volatile sections.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from nexus.domain.conversation.text import js_trim, js_utf8, strip_system_reminders
from nexus.domain.request_type import BILLING_HEADER_PREFIX

# The most specific first: a sub-agent's prompt also carries the Claude Code identity line.
MARKERS = (
    "You are an agent for Claude Code",
    "You are Claude Code, Anthropic's official CLI for Claude",
    "You are an interactive CLI tool that helps users with software engineering tasks",
)
_VOLATILE = (
    re.compile(r"<transient_context>.*?</transient_context>", re.DOTALL),
    re.compile(r"^gitStatus:.*", re.DOTALL | re.MULTILINE),
    re.compile(r"^Status:\n(?:.+\n?)*", re.MULTILINE),
    re.compile(r"^Current branch:.*$", re.MULTILINE),
    re.compile(r"^Main branch.*:.*$", re.MULTILINE),
    re.compile(r"^Recent commits:\n(?:.+\n?)*", re.MULTILINE),
)
_BILLING_LINE = re.compile(rf"^{re.escape(BILLING_HEADER_PREFIX)}.*$\n?", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")


def system_hash(system: Any) -> str | None:
    """Hash of a request's ``system`` (a string or text blocks); None when there is no prompt."""
    texts = _texts(system)
    for marker in MARKERS:
        if any(js_trim(text).startswith(marker) for text in texts):
            return _sha(f"marker:{marker}")
    stable = "\n".join(texts)
    for pattern in _VOLATILE:
        stable = pattern.sub("", stable)
    stable = js_trim(_BLANK_RUNS.sub("\n\n", strip_system_reminders(stable)))
    return _sha(stable) if stable else None


def system_text(system: Any) -> str:
    """The prompt's text blocks joined, billing lines removed (used to recognise prompts)."""
    return "\n".join(_texts(system))


def _texts(system: Any) -> list[str]:
    if isinstance(system, str):
        raw = [system]
    elif isinstance(system, list):
        raw = [b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)]
    else:
        return []
    texts = [_BILLING_LINE.sub("", text) for text in raw]
    return [text for text in texts if js_trim(text)]


def _sha(text: str) -> str:
    return hashlib.sha256(js_utf8(text)).hexdigest()
