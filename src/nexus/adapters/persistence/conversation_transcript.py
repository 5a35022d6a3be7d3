"""One conversation's requests with their prompt text and answers, for the dashboard's transcript.

Read through the ``(conversation_id, ts)`` index, oldest first (the graph draws the same
requests). PostgreSQL takes each stored answer apart (``jsonb_array_elements``) and cuts every
block's text, thinking or tool input at ``REPLY_BLOCK_CHARS``: a tool call writing a whole
file sends its start, not the file.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

import msgspec
from sqlalchemy import ColumnClause, Row, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.conversation_queries import (
    REPLY_BLOCK_CHARS,
    ReplyBlock,
    TranscriptPage,
    TranscriptStep,
)
from nexus.domain.pricing import optional_cost_text

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

_e = exchanges.c
# Constant SQL (no input in it): the answer's blocks, each reduced to its kind, tool name and
# the start of what it says. A ``content`` that is not an array gives no blocks.
_BLOCKS: ColumnClause[Any] = literal_column(
    f"""(
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'kind', coalesce(item.block ->> 'type', ''),
        'name', item.block ->> 'name',
        'text', left(said.body, {REPLY_BLOCK_CHARS}),
        'length', length(said.body)) ORDER BY item.position), '[]'::jsonb)
    FROM jsonb_array_elements(CASE jsonb_typeof(exchanges.response_body -> 'content')
            WHEN 'array' THEN exchanges.response_body -> 'content' ELSE '[]'::jsonb END)
        WITH ORDINALITY AS item(block, position),
        LATERAL (SELECT coalesce(CASE item.block ->> 'type'
            WHEN 'text' THEN item.block ->> 'text'
            WHEN 'thinking' THEN item.block ->> 'thinking'
            ELSE (item.block -> 'input')::text END, '') AS body) AS said
    )""",  # noqa: S608 -- constant SQL: its one value is REPLY_BLOCK_CHARS, an int constant
    type_=JSONB,
)
_ERROR_MESSAGE: ColumnClause[Any] = literal_column("'{error,message}'::text[]")
_COLUMNS = (
    _e.id,
    _e.ts,
    _e.branch_id,
    _e.parent_request_id,
    _e.message_hash,
    func.coalesce(_e.model, _e.model_requested).label("model"),
    _e.state,
    _e.status,
    _e.duration_ms,
    _e.tool_call_count,
    _e.cost_usd,
    _e.prompt_text,
    _BLOCKS.label("blocks"),
    func.left(_e.response_body.op("#>>")(_ERROR_MESSAGE), REPLY_BLOCK_CHARS).label("error"),
    _e.response_body["stop_reason"].astext.label("stop_reason"),
)


async def read_transcript(engine: AsyncEngine | None, conversation_id: uuid.UUID, *, limit: int) -> TranscriptPage:
    statement = (
        select(*_COLUMNS)
        .where(_e.conversation_id == conversation_id)
        .order_by(_e.ts.asc(), _e.id.asc())
        .limit(limit + 1)
    )

    async def run(connection: AsyncConnection) -> TranscriptPage:
        rows = (await connection.execute(statement)).all()
        return TranscriptPage(steps=[_step(row) for row in rows[:limit]], truncated=len(rows) > limit)

    return await run_read(engine, run)


def _step(row: AnyRow) -> TranscriptStep:
    return TranscriptStep(
        request_id=row.id,
        timestamp=row.ts,
        branch_id=row.branch_id,
        parent_request_id=row.parent_request_id,
        message_hash=row.message_hash,
        model=row.model,
        state=row.state,
        status=row.status,
        duration_ms=row.duration_ms,
        tool_call_count=row.tool_call_count,
        cost_usd=optional_cost_text(row.cost_usd),
        prompt_text=row.prompt_text,
        blocks=_blocks(row.blocks),
        error=row.error,
        stop_reason=row.stop_reason,
    )


def _blocks(value: Any) -> list[ReplyBlock]:
    try:
        return msgspec.convert(value, list[ReplyBlock])
    except msgspec.ValidationError:  # not what the statement builds: show no blocks rather than fail
        return []
