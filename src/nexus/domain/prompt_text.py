"""The text a request's last user message carries, as the dashboard shows and searches it.

Kept on each ``/v1/messages`` row at record time (``exchanges.prompt_text``): the request body
is stored compressed in content-addressed parts, so neither a list nor a search could read it
back cheaply. Claude Code's ``<system-reminder>`` blocks are left out (they repeat on every
turn and would match every search), white space is collapsed, and the text is cut at
``PROMPT_TEXT_LENGTH`` characters: enough for a preview, a transcript's prompt and a search.
"""

from __future__ import annotations

from collections.abc import Iterable

from nexus.domain.conversation.text import collapse_whitespace, strip_system_reminders

__all__ = ["PROMPT_TEXT_LENGTH", "prompt_text"]

PROMPT_TEXT_LENGTH = 2000


def prompt_text(texts: Iterable[str]) -> str | None:
    """The message's text pieces (its string, or its text blocks) as one searchable line;
    ``None`` when nothing is left, as in a message of tool results only."""
    joined = " ".join(strip_system_reminders(text) for text in texts)
    return collapse_whitespace(joined)[:PROMPT_TEXT_LENGTH] or None
