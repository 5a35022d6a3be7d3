"""One conversation's requests for the dashboard's timeline and analytics (SQLAlchemy Core).

Read through the ``(conversation_id, ts)`` index, newest first so the limit keeps the newest
(counted apart only when the limit was reached).
The tool names and the ``anthropic-beta`` values are picked out of the stored JSON by
PostgreSQL (``jsonb_path_query_array``): only they travel, not the answers and headers.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

from sqlalchemy import ColumnClause, Row, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.conversation_queries import ActivityPage, RequestActivity
from nexus.domain.pricing import optional_cost_text

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

_e = exchanges.c
# Constant paths, written into the statement (never from input).
_TOOL_NAMES: ColumnClause[Any] = literal_column("""'$.content[*] ? (@.type == "tool_use").name'::jsonpath""")
# Headers are stored as [[name, value], ...]. Strict: lax mode would unwrap each pair and
# test its strings instead; silent (the last argument), so a value of another shape gives [].
_BETAS: ColumnClause[Any] = literal_column("""'strict $[*] ? (@[0] == "anthropic-beta")[1]'::jsonpath""")
_NO_VARS: ColumnClause[Any] = literal_column("'{}'::jsonb")
# What ``request_figures`` reads: the ``RequestFigures`` of a request.
FIGURE_COLUMNS = (
    func.coalesce(_e.model, _e.model_requested).label("model"),
    _e.state,
    _e.status,
    _e.input_tokens,
    _e.output_tokens,
    _e.cache_creation_input_tokens,
    _e.cache_read_input_tokens,
    _e.cost_usd,
    _e.duration_ms,
)
_COLUMNS = (
    _e.id,
    _e.ts,
    _e.branch_id,
    _e.parent_request_id,
    _e.is_subtask,
    _e.message_hash,
    *FIGURE_COLUMNS,
    _e.tool_call_count,
    func.jsonb_path_query_array(_e.response_body, _TOOL_NAMES).label("tool_names"),
    func.jsonb_path_query_array(_e.request_headers, _BETAS, _NO_VARS, true()).label("betas"),
)


async def read_activity(
    engine: AsyncEngine | None, conversation_id: uuid.UUID, *, branch_id: str | None, limit: int
) -> ActivityPage:
    conditions = [_e.conversation_id == conversation_id]
    if branch_id is not None:
        conditions.append(_e.branch_id == branch_id)
    statement = select(*_COLUMNS).where(*conditions).order_by(_e.ts.desc(), _e.id.desc()).limit(limit)
    # Counted apart: a window count in the same statement would pick the JSON apart for every
    # request of the conversation, not only for the ``limit`` kept.
    counted = select(func.count()).select_from(exchanges).where(*conditions)

    async def run(connection: AsyncConnection) -> ActivityPage:
        rows = (await connection.execute(statement)).all()
        total = await connection.scalar(counted) if len(rows) == limit else len(rows)
        return ActivityPage(requests=[_activity(row) for row in reversed(rows)], total=total or 0)

    return await run_read(engine, run, snapshot=True)


def _activity(row: AnyRow) -> RequestActivity:
    return RequestActivity(
        request_id=row.id,
        timestamp=row.ts,
        branch_id=row.branch_id,
        parent_request_id=row.parent_request_id,
        is_subtask=row.is_subtask,
        message_hash=row.message_hash,
        **request_figures(row),
        tool_call_count=row.tool_call_count,
        tool_names=_strings(row.tool_names),
        betas=_strings(row.betas),
    )


def request_figures(row: AnyRow) -> dict[str, Any]:
    """The ``RequestFigures`` fields of a row that selected them (``model`` labelled)."""
    return {
        "model": row.model,
        "state": row.state,
        "status": row.status,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_creation_input_tokens": row.cache_creation_input_tokens,
        "cache_read_input_tokens": row.cache_read_input_tokens,
        "cost_usd": optional_cost_text(row.cost_usd),
        "duration_ms": row.duration_ms,
    }


def _strings(values: Any) -> list[str]:
    """The strings of a JSON array (a name that is not a string is not one we can show)."""
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []
