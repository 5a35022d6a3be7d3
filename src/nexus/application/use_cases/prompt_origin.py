"""Which MCP prompt a conversation started from: one of its first user message's texts is a
rendered prompt's (``prompt_uses`` keeps their hashes), found in the first request's body."""

from __future__ import annotations

import uuid

import msgspec

from nexus.application.ports.exchange_queries import ExchangeQueries, QueriesUnavailable
from nexus.application.ports.prompts import PromptUse, PromptUses
from nexus.domain import json_text
from nexus.domain.content_encoding import decoded_body
from nexus.domain.prompts import first_user_text_hashes


async def prompt_origin(
    conversation_id: uuid.UUID, *, exchanges: ExchangeQueries, uses: PromptUses
) -> PromptUse | None:
    """None when it cannot be told: no body stored, none matching, or the database away."""
    try:
        stored = await exchanges.request_body(conversation_id)  # a conversation's id is its first request's
        if stored is None:
            return None
        data = decoded_body(stored.data, stored.content_encoding.encode() if stored.content_encoding else None)
        if data is None:
            return None
        try:
            body = json_text.loads(data)
        except msgspec.DecodeError:
            return None
        return await uses.find(first_user_text_hashes(body))
    except QueriesUnavailable:
        return None
