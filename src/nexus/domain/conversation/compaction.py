"""Compactions: the request that summarises a conversation and the one that continues it.

``/compact`` (manual or automatic) first sends the whole history with an instruction to
summarise it; the response is the summary. The conversation then goes on in a request whose
first user message says "This session is being continued from a previous conversation" and
carries that summary, reformatted: Claude Code turns ``<analysis>``/``<summary>`` tags into
"Analysis:"/"Summary:" headings (older versions kept the analysis, 2.1 drops it) and appends
resume instructions. Both texts are reduced to a canonical form (lower case, no tags or
headings, white space collapsed) in which the continuation's summary is a substring of the
summarising response's text.
"""

from __future__ import annotations

import re
from typing import Any

from nexus.domain.conversation.subagents import user_text
from nexus.domain.conversation.text import collapse_whitespace

SUMMARISER_PROMPT = "You are a helpful AI assistant tasked with summarizing conversations"
SUMMARY_INSTRUCTION = "Your task is to create a detailed summary of the conversation so far"
CONTINUATION = "This session is being continued from a previous conversation"
_SUMMARY_MARKERS = ("The conversation is summarized below:", "Summary:")
_RESUME_SUFFIXES = (
    "Please continue the conversation",
    "If you need specific details from before compaction",
    "Continue the conversation from where it left off",
)
KEY_LENGTH = 2000  # enough to tell summaries apart (a 200-character probe collided, §14)
MIN_KEY_LENGTH = 100  # a shorter summary matches too much to link on its text alone
_TAGS = re.compile(r"</?(?:analysis|summary)>", re.IGNORECASE)
_HEADINGS = re.compile(r"^[ \t]*(?:analysis|summary):", re.IGNORECASE | re.MULTILINE)


def summarises(system: str, conversation: list[dict[str, Any]]) -> bool:
    """Whether a request asks for a summary of its conversation (a compaction)."""
    if SUMMARISER_PROMPT in system:
        return True
    last = conversation[-1] if conversation else None
    return bool(last and last.get("role") == "user" and SUMMARY_INSTRUCTION in user_text(last.get("content")))


def continuation_key(conversation: list[dict[str, Any]]) -> str | None:
    """The canonical summary carried by a continuation's first user message, else None."""
    if not conversation or conversation[0].get("role") != "user":
        return None
    text = user_text(conversation[0].get("content"))
    start = text.find(CONTINUATION)
    if start < 0:
        return None
    body = text[start + len(CONTINUATION) :]
    markers = [i + len(m) for m in _SUMMARY_MARKERS if (i := body.find(m)) >= 0]
    body = body[min(markers) :] if markers else body
    ends = [i for suffix in _RESUME_SUFFIXES if (i := body.find(suffix)) >= 0]
    if ends:
        body = body[: min(ends)]
    key = canonical(body.strip().rstrip(".")).strip(" .")
    return key[:KEY_LENGTH] or None


def canonical(text: str) -> str:
    """Lower case, without analysis/summary tags or headings, white space collapsed."""
    return collapse_whitespace(_HEADINGS.sub(" ", _TAGS.sub(" ", text)).lower())


def response_text(response: Any) -> str:
    """The first text block of a response message (where a summary is)."""
    content = response.get("content") if isinstance(response, dict) else None
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                return str(block["text"])
    return ""


def summary_matches(key: str, summary_text: str) -> bool:
    """Whether a summarising request's response text (see :func:`response_text`) holds the
    continuation's summary."""
    return len(key) >= MIN_KEY_LENGTH and key in canonical(summary_text)
