"""What linking needs to know of one exchange, computed once when it is recorded."""

from __future__ import annotations

from typing import Any

import msgspec

from nexus.domain import json_text
from nexus.domain.conversation.compaction import continuation_key, summarises
from nexus.domain.conversation.message_hash import conversation_hashes, conversation_messages
from nexus.domain.conversation.subagents import AgentCall, agent_calls, first_prompt_text, prompt_key, user_text
from nexus.domain.conversation.system_hash import system_hash, system_text
from nexus.domain.conversation.text import collapse_whitespace

# Bump when a rule below changes: rows with older facts are recomputed by the rebuild command.
FACTS_VERSION = 1
TITLE_LENGTH = 200


class LinkFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Content identity of a request and its response.

    ``prompt_key``: set when the request is one user message (a possible sub-agent start).
    ``summarises``: the request asks for a summary (a compaction).
    ``continuation_key``: the canonical summary a post-compaction request carries.
    ``agent_calls``: sub-agents launched by the response.
    ``title``: the first user message's text, trimmed, for lists.
    """

    message_hash: str | None = None
    parent_hash: str | None = None
    grandparent_hash: str | None = None
    system_hash: str | None = None
    message_count: int = 0
    prompt_key: str | None = None
    summarises: bool = False
    continuation_key: str | None = None
    agent_calls: list[AgentCall] = msgspec.field(default_factory=list)
    title: str | None = None


def facts_from_body(body: bytes, response: Any) -> LinkFacts:
    """Facts of a raw Messages request body and its response message (None if there is none)."""
    try:
        decoded = json_text.loads(body)
    except msgspec.DecodeError:
        return LinkFacts()
    return link_facts(decoded, response)


def link_facts(body: Any, response: Any) -> LinkFacts:
    """Facts of a decoded Messages request body and its response message."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return LinkFacts()
    conversation = conversation_messages(body["messages"])
    hashes = conversation_hashes(conversation)
    prompt = first_prompt_text(conversation)
    system = body.get("system")
    return LinkFacts(
        message_hash=hashes.current if hashes else None,
        parent_hash=hashes.parent if hashes else None,
        grandparent_hash=hashes.grandparent if hashes else None,
        system_hash=system_hash(system),
        message_count=hashes.count if hashes else 0,
        prompt_key=prompt_key(prompt) if prompt is not None else None,
        summarises=summarises(system_text(system), conversation),
        continuation_key=continuation_key(conversation),
        agent_calls=agent_calls(response),
        title=_title(conversation),
    )


def _title(conversation: list[dict[str, Any]]) -> str | None:
    first_user = next((m for m in conversation if m.get("role") == "user"), None)
    if first_user is None:
        return None
    title = collapse_whitespace(user_text(first_user.get("content")))
    return title[:TITLE_LENGTH] or None
