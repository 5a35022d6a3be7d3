"""Conversation facts of a stored row, for rows recorded before the facts existed (or under
older rules): computed from the stored request body and response message."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from nexus.adapters.persistence.stored_bodies import compose_body
from nexus.domain.body_codec import BodyCodecError
from nexus.domain.conversation.facts import LinkFacts, facts_from_body

log = logging.getLogger(__name__)


async def stored_facts(connection: AsyncConnection, ts: datetime, exchange_id: uuid.UUID) -> LinkFacts:
    """Facts from the row's stored bodies; empty facts (a conversation of its own) without them."""
    result = await connection.execute(
        text("SELECT request_body, response_body FROM exchanges WHERE ts = :ts AND id = :id"),
        {"ts": ts, "id": exchange_id},
    )
    row = result.one_or_none()
    if row is None or row.request_body is None:
        return LinkFacts()
    try:
        body = await compose_body(connection, row.request_body)
    except BodyCodecError as exc:
        log.warning("Stored body of exchange %s cannot be read (%s); it starts its own conversation", exchange_id, exc)
        return LinkFacts()
    return facts_from_body(body, row.response_body)
