"""Sub-agents: the tool calls that launch them and the requests that start them.

Claude Code runs a sub-agent (tool ``Agent``, ``Task`` before 2.1.63) as separate requests
whose first and only user message is the tool call's ``input.prompt``. Both sides are reduced
to a key (SHA-256 of the trimmed text) so the request can find the response that launched it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from nexus.domain.conversation.text import js_trim, js_utf8, strip_system_reminders

SUBAGENT_TOOLS = frozenset({"Agent", "Task"})


class AgentCall(msgspec.Struct, frozen=True):
    """A sub-agent launch in a response: its tool_use id, 1-based position among the
    response's launches, and the key of its prompt."""

    id: str
    name: str
    position: int
    prompt_key: str
    description: str | None = None


def prompt_key(text: str) -> str:
    return hashlib.sha256(js_utf8(js_trim(text))).hexdigest()


def first_prompt_text(conversation: list[dict[str, Any]]) -> str | None:
    """The text of a request made of one user message (how a sub-agent starts), else None.

    Reminders are removed; text blocks left empty are dropped and the rest joined by newlines.
    """
    if len(conversation) != 1 or conversation[0].get("role") != "user":
        return None
    text = user_text(conversation[0].get("content"))
    return text if js_trim(text) else None


def user_text(content: Any) -> str:
    """A message's text without reminders: the string, or its text blocks joined by newlines."""
    if isinstance(content, str):
        return strip_system_reminders(content)
    if not isinstance(content, list):
        return ""
    texts = (
        strip_system_reminders(block["text"])
        for block in content
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    )
    return "\n".join(text for text in texts if js_trim(text))


def agent_calls(response: Any) -> list[AgentCall]:
    """Sub-agent launches in a response message (``content`` of a rebuilt or plain message)."""
    content = response.get("content") if isinstance(response, dict) else None
    if not isinstance(content, list):
        return []
    calls: list[AgentCall] = []
    for block in content:
        if not (isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") in SUBAGENT_TOOLS):
            continue
        tool_input = block.get("input")
        prompt = tool_input.get("prompt") if isinstance(tool_input, dict) else None
        if not isinstance(prompt, str) or not isinstance(block.get("id"), str):
            continue
        description = tool_input.get("description") if isinstance(tool_input, dict) else None
        calls.append(
            AgentCall(
                id=block["id"],
                name=block["name"],
                position=len(calls) + 1,
                prompt_key=prompt_key(prompt),
                description=description if isinstance(description, str) else None,
            )
        )
    return calls
