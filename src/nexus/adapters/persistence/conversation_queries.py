"""Conversations read back from PostgreSQL (SQLAlchemy Core on ``tables.py``).

The list reads only the ``conversations`` summaries the linker keeps (one row per
conversation), never the exchanges. The tree reads one conversation's exchanges through the
``(conversation_id, ts)`` index: its nodes up to a limit, and the totals of its branches and
sub-agents grouped in SQL over all of its requests.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec
from sqlalchemy import ColumnElement, Row, func, literal, select, union
from sqlalchemy.dialects.postgresql import UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.conversation_activity import FIGURE_COLUMNS, read_activity, request_figures
from nexus.adapters.persistence.conversation_transcript import read_transcript
from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import conversations, exchanges
from nexus.application.ports.conversation_queries import (
    ActivityPage,
    ConversationBranch,
    ConversationFilters,
    ConversationNode,
    ConversationPage,
    ConversationSummary,
    ConversationTree,
    SubagentTotals,
    TranscriptPage,
)
from nexus.domain.conversation.branches import branch_kind, subtask_number
from nexus.domain.pricing import optional_cost_text

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

_c = conversations.c
_e = exchanges.c
_SUMMARY_COLUMNS = tuple(column for column in conversations.columns if column.name != "updated_at")
_NODE_COLUMNS = (
    _e.id,
    _e.ts,
    _e.branch_id,
    _e.parent_request_id,
    _e.parent_task_request_id,
    _e.is_subtask,
    _e.spawn_tool_use_id,
    _e.link_method,
    *FIGURE_COLUMNS,
    _e.title,
)


class SqlAlchemyConversationQueries:
    """``ConversationQueries`` on the recording database; ``engine`` is None when storage is off."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    async def list_conversations(self, filters: ConversationFilters, *, limit: int, offset: int) -> ConversationPage:
        conditions = _conditions(filters)

        async def run(connection: AsyncConnection) -> ConversationPage:
            total = await connection.scalar(select(func.count()).select_from(conversations).where(*conditions))
            rows = await connection.execute(
                select(*_SUMMARY_COLUMNS)
                .where(*conditions)
                .order_by(_c.last_at.desc(), _c.conversation_id.desc())
                .limit(limit)
                .offset(offset)
            )
            return ConversationPage(conversations=[_summary(row) for row in rows], total=total or 0)

        return await run_read(self._engine, run, snapshot=True)

    async def get_conversation(self, conversation_id: uuid.UUID, *, limit: int) -> ConversationTree | None:
        async def run(connection: AsyncConnection) -> ConversationTree | None:
            found = await connection.execute(select(*_SUMMARY_COLUMNS).where(_c.conversation_id == conversation_id))
            summary = found.first()
            if summary is None:
                return None
            nodes = (await connection.execute(_nodes(conversation_id, limit + 1))).all()
            branches = await connection.execute(_branches(conversation_id))
            subagents = await connection.execute(_subagents(conversation_id))
            return ConversationTree(
                conversation=_summary(summary),
                nodes=[_node(row) for row in nodes[:limit]],
                branches=[_branch(row) for row in branches],
                subagents=_rolled_up(subagents.all()),
                truncated=len(nodes) > limit,
            )

        return await run_read(self._engine, run, snapshot=True)

    async def conversation_activity(
        self, conversation_id: uuid.UUID, *, branch_id: str | None, limit: int
    ) -> ActivityPage:
        return await read_activity(self._engine, conversation_id, branch_id=branch_id, limit=limit)

    async def conversation_transcript(self, conversation_id: uuid.UUID, *, limit: int) -> TranscriptPage:
        return await read_transcript(self._engine, conversation_id, limit=limit)


# --- the list -----------------------------------------------------------------------------------


def _conditions(filters: ConversationFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.domain is not None:
        conditions.append(_c.domain == filters.domain)
    if filters.account_id is not None:
        conditions.append(_c.account_id == filters.account_id)
    if filters.since is not None:
        conditions.append(_c.last_at >= filters.since)
    if filters.until is not None:
        conditions.append(_c.first_at < filters.until)
    if filters.search:
        conditions.append(_search(filters.search))
    return conditions


def _search(text: str) -> ColumnElement[bool]:
    """A UUID finds the conversation with that id or holding that request (by index, where a
    title scan would read every summary); anything else is a title fragment."""
    identifier = _uuid_or_none(text.strip())
    if identifier is not None:
        holding = select(_e.conversation_id).where(_e.id == identifier, _e.conversation_id.is_not(None))
        return _c.conversation_id.in_(union(select(literal(identifier, UUID(as_uuid=True))), holding))
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return _c.title.ilike(pattern, escape="\\")


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# --- the tree -----------------------------------------------------------------------------------


def _first(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The value of the group's oldest request."""
    return func.array_agg(aggregate_order_by(column, _e.ts.asc(), _e.id.asc()))[1]


def _tokens(column: ColumnElement[int | None]) -> ColumnElement[int]:
    return func.coalesce(func.sum(column), 0)


def _nodes(conversation_id: uuid.UUID, limit: int) -> Any:
    return (
        select(*_NODE_COLUMNS)
        .where(_e.conversation_id == conversation_id)
        .order_by(_e.ts.asc(), _e.id.asc())
        .limit(limit)
    )


def _branches(conversation_id: uuid.UUID) -> Any:
    """Each branch's totals, and the branch of the request its first request continues."""
    per_branch = (
        select(
            _e.branch_id,
            func.count().label("requests"),
            _tokens(_e.input_tokens).label("input_tokens"),
            _tokens(_e.output_tokens).label("output_tokens"),
            func.sum(_e.cost_usd).label("cost_usd"),
            func.min(_e.ts).label("first_at"),
            func.max(_e.ts).label("last_at"),
            _first(_e.id).label("first_id"),
            _first(_e.parent_request_id).label("first_parent_id"),
        )
        .where(_e.conversation_id == conversation_id, _e.branch_id.is_not(None))
        .group_by(_e.branch_id)
        .cte("per_branch")
    )
    parent = exchanges.alias("parent")
    return (
        select(per_branch, parent.c.branch_id.label("parent_branch_id"))
        .select_from(per_branch.outerjoin(parent, parent.c.id == per_branch.c.first_parent_id))
        .order_by(per_branch.c.first_at, per_branch.c.branch_id)
    )


def _subagents(conversation_id: uuid.UUID) -> Any:
    """Each sub-agent's own totals (its requests share the launching tool call's id), with the
    launching request: its calls (for the description) and, when it is itself a sub-agent's
    request, that sub-agent's tool call (for the roll-up)."""
    per_call = (
        select(
            _e.spawn_tool_use_id.label("tool_use_id"),
            _first(_e.parent_task_request_id).label("spawner_id"),
            _first(_e.branch_id).label("branch_id"),
            func.count().label("requests"),
            _tokens(_e.input_tokens).label("input_tokens"),
            _tokens(_e.output_tokens).label("output_tokens"),
            func.sum(_e.cost_usd).label("cost_usd"),
            func.min(_e.ts).label("first_at"),
        )
        .where(_e.conversation_id == conversation_id, _e.is_subtask, _e.spawn_tool_use_id.is_not(None))
        .group_by(_e.spawn_tool_use_id)
        .cte("per_call")
    )
    spawner = exchanges.alias("spawner")
    return select(
        per_call,
        spawner.c.agent_calls,
        spawner.c.is_subtask.label("spawner_is_subtask"),
        spawner.c.spawn_tool_use_id.label("spawner_tool_use_id"),
    ).select_from(per_call.outerjoin(spawner, spawner.c.id == per_call.c.spawner_id))


class _Own(msgspec.Struct, frozen=True, kw_only=True):
    """A sub-agent's own totals, before the roll-up."""

    tool_use_id: str
    spawner_id: uuid.UUID | None
    parent: str | None
    branch_id: str | None
    description: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    first_at: datetime


def _rolled_up(rows: Sequence[AnyRow]) -> list[SubagentTotals]:
    """Each sub-agent with the totals of the sub-agents nested under it added to its own,
    in launch order (``subtask_N``)."""
    own = {row.tool_use_id: _own(row) for row in rows}
    children: dict[str, list[str]] = defaultdict(list)
    for agent in own.values():
        if agent.parent is not None and agent.parent in own and agent.parent != agent.tool_use_id:
            children[agent.parent].append(agent.tool_use_id)
    ordered = sorted(own.values(), key=_launch_order)
    rolled = []
    for agent in ordered:
        nested = [own[tool_use_id] for tool_use_id in _descendants(agent.tool_use_id, children)]
        counted = [agent, *nested]
        rolled.append(
            SubagentTotals(
                tool_use_id=agent.tool_use_id,
                spawning_request_id=agent.spawner_id,
                parent_tool_use_id=agent.parent,
                branch_id=agent.branch_id,
                description=agent.description,
                request_count=sum(a.requests for a in counted),
                input_tokens=sum(a.input_tokens for a in counted),
                output_tokens=sum(a.output_tokens for a in counted),
                cost_usd=optional_cost_text(_total(a.cost_usd for a in counted)),
                nested_branch_ids=[a.branch_id for a in sorted(nested, key=_launch_order) if a.branch_id],
            )
        )
    return rolled


def _own(row: AnyRow) -> _Own:
    return _Own(
        tool_use_id=row.tool_use_id,
        spawner_id=row.spawner_id,
        parent=row.spawner_tool_use_id if row.spawner_is_subtask else None,
        branch_id=row.branch_id,
        description=_description(row.agent_calls, row.tool_use_id),
        requests=row.requests,
        input_tokens=int(row.input_tokens),
        output_tokens=int(row.output_tokens),
        cost_usd=row.cost_usd,
        first_at=row.first_at,
    )


def _descendants(root: str, children: dict[str, list[str]]) -> list[str]:
    """Every sub-agent under ``root``, at any depth (each once, even in a malformed cycle)."""
    seen = {root}
    found = []
    pending = list(children.get(root, ()))
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        found.append(current)
        pending.extend(children.get(current, ()))
    return found


def _launch_order(agent: _Own) -> tuple[int, datetime, str]:
    number = subtask_number(agent.branch_id)
    return (number if number is not None else 1 << 30, agent.first_at, agent.tool_use_id)


def _description(calls: Any, tool_use_id: str) -> str | None:
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict) and call.get("id") == tool_use_id:
            description = call.get("description")
            return description if isinstance(description, str) else None
    return None


def _total(costs: Iterable[Decimal | None]) -> Decimal | None:
    priced = [cost for cost in costs if cost is not None]
    return sum(priced, Decimal(0)) if priced else None


# --- rows to read models ------------------------------------------------------------------------


def _summary(row: AnyRow) -> ConversationSummary:
    return ConversationSummary(
        conversation_id=row.conversation_id,
        domain=row.domain,
        account_id=row.account_id,
        first_at=row.first_at,
        last_at=row.last_at,
        request_count=row.request_count,
        branch_count=row.branch_count,
        subtask_count=row.subtask_count,
        compact_count=row.compact_count,
        models=sorted(row.models),
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cache_creation_input_tokens=row.cache_creation_input_tokens,
        cache_read_input_tokens=row.cache_read_input_tokens,
        cost_usd=optional_cost_text(row.cost_usd),
        latest_request_id=row.latest_request_id,
        title=row.title,
    )


def _node(row: AnyRow) -> ConversationNode:
    return ConversationNode(
        request_id=row.id,
        timestamp=row.ts,
        branch_id=row.branch_id,
        parent_request_id=row.parent_request_id,
        parent_task_request_id=row.parent_task_request_id,
        is_subtask=row.is_subtask,
        spawn_tool_use_id=row.spawn_tool_use_id,
        link_method=row.link_method,
        **request_figures(row),
        title=row.title,
    )


def _branch(row: AnyRow) -> ConversationBranch:
    return ConversationBranch(
        branch_id=row.branch_id,
        kind=branch_kind(row.branch_id),
        parent_branch_id=row.parent_branch_id,
        first_request_id=row.first_id,
        request_count=row.requests,
        input_tokens=int(row.input_tokens),
        output_tokens=int(row.output_tokens),
        cost_usd=optional_cost_text(row.cost_usd),
        first_at=row.first_at,
        last_at=row.last_at,
    )
