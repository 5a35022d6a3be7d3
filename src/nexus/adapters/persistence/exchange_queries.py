"""Recorded exchanges read back from PostgreSQL (SQLAlchemy Core on ``tables.py``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import msgspec
from sqlalchemy import ARRAY, ColumnElement, Row, Select, Text, any_, bindparam, cast, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.db_errors import read_failure
from nexus.adapters.persistence.request_previews import preview, previews_statement
from nexus.adapters.persistence.stored_bodies import compose_body
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.exchange_queries import (
    DomainActivity,
    DomainPage,
    QueriesUnavailable,
    RequestDetail,
    RequestFilters,
    RequestPage,
    RequestPreview,
    RequestSummary,
    Stats,
    StoredBody,
    UsageGroup,
    UsageTotals,
)
from nexus.domain import json_text
from nexus.domain.outcome import ERROR_OUTCOMES
from nexus.domain.pricing import cost_text, optional_cost_text
from nexus.domain.stored_compression import decompress_stored
from nexus.domain.upstream_attempts import UpstreamAttempt

T = TypeVar("T")
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

_CHUNK_ROWS = 500

_model = func.coalesce(exchanges.c.model, exchanges.c.model_requested)
_SUMMARY_COLUMNS = (
    exchanges.c.id,
    exchanges.c.ts,
    exchanges.c.domain,
    exchanges.c.account_id,
    exchanges.c.method,
    exchanges.c.path,
    _model.label("model"),
    exchanges.c.model_requested,
    exchanges.c.request_type,
    exchanges.c.status,
    exchanges.c.stream,
    exchanges.c.state,
    exchanges.c.error,
    exchanges.c.input_tokens,
    exchanges.c.output_tokens,
    exchanges.c.cache_creation_input_tokens,
    exchanges.c.cache_read_input_tokens,
    exchanges.c.cost_usd,
    exchanges.c.duration_ms,
    exchanges.c.first_token_ms,
    exchanges.c.tool_call_count,
    exchanges.c.conversation_id,
    exchanges.c.branch_id,
    exchanges.c.parent_request_id,
    exchanges.c.is_subtask,
    exchanges.c.parent_task_request_id,
)
_DETAIL_COLUMNS = (
    *_SUMMARY_COLUMNS,
    exchanges.c.upstream_request_id,
    exchanges.c.query,
    exchanges.c.user_agent,
    exchanges.c.session_id,
    exchanges.c.agent_id,
    exchanges.c.cache_creation_5m_input_tokens,
    exchanges.c.cache_creation_1h_input_tokens,
    exchanges.c.price_version,
    exchanges.c.request_headers,
    exchanges.c.response_headers,
    exchanges.c.request_body,
    exchanges.c.request_body_size,
    exchanges.c.response_body,
    exchanges.c.response_raw_size,
    exchanges.c.upstream_attempts,
    exchanges.c.link_pending,
)


class SqlAlchemyExchangeQueries:
    """``ExchangeQueries`` on the recording database; ``engine`` is None when storage is off."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    async def list_requests(
        self, filters: RequestFilters, *, limit: int, offset: int, count_up_to: int | None = None
    ) -> RequestPage:
        # A text search scans every row it matches to count them; a bounded count stops early.
        counting = _count(filters) if count_up_to is None else _count_up_to(filters, count_up_to + 1)

        async def run(connection: AsyncConnection) -> RequestPage:
            total = (await connection.scalar(counting)) or 0
            rows = await connection.execute(_newest_first(filters).limit(limit).offset(offset))
            requests = [_summary(row) for row in rows]
            if count_up_to is not None and total > count_up_to:
                return RequestPage(requests=requests, total=count_up_to, total_is_exact=False)
            return RequestPage(requests=requests, total=total)

        return await self._run(run)

    async def count_requests(self, filters: RequestFilters) -> int:
        async def run(connection: AsyncConnection) -> int:
            return (await connection.scalar(_count(filters))) or 0

        return await self._run(run)

    async def iter_requests(self, filters: RequestFilters, *, limit: int) -> AsyncIterator[list[RequestSummary]]:
        engine = self._require_engine()
        try:
            async with engine.connect() as connection:
                result = await connection.stream(
                    _newest_first(filters).limit(limit).execution_options(yield_per=_CHUNK_ROWS)
                )
                async for rows in result.partitions(_CHUNK_ROWS):
                    yield [_summary(row) for row in rows]
        except Exception as exc:
            if (failure := read_failure(exc)) is None:
                raise
            raise QueriesUnavailable(failure) from None

    async def summaries_by_ids(self, request_ids: Sequence[uuid.UUID]) -> list[RequestSummary]:
        if not request_ids:
            return []
        statement = (
            select(*_SUMMARY_COLUMNS)
            .where(exchanges.c.id == any_(bindparam("ids", list(request_ids), type_=ARRAY(exchanges.c.id.type))))
            .order_by(exchanges.c.ts.asc(), exchanges.c.id.asc())
        )

        async def run(connection: AsyncConnection) -> list[RequestSummary]:
            return [_summary(row) for row in await connection.execute(statement)]

        return await self._run(run)

    async def previews(self, requests: Sequence[RequestSummary]) -> dict[uuid.UUID, RequestPreview]:
        if not requests:
            return {}

        async def run(connection: AsyncConnection) -> dict[uuid.UUID, RequestPreview]:
            return dict(preview(row) for row in await connection.execute(previews_statement(requests)))

        return await self._run(run)

    async def get_request(self, request_id: uuid.UUID) -> RequestDetail | None:
        async def run(connection: AsyncConnection) -> RequestDetail | None:
            row = (await connection.execute(select(*_DETAIL_COLUMNS).where(exchanges.c.id == request_id))).first()
            if row is None:
                return None
            body = await compose_body(connection, row.request_body) if row.request_body is not None else None
            return _detail(row, body)

        return await self._run(run)

    async def request_body(self, request_id: uuid.UUID) -> StoredBody | None:
        async def run(connection: AsyncConnection) -> StoredBody | None:
            row = (
                await connection.execute(
                    select(exchanges.c.request_body, exchanges.c.request_headers).where(exchanges.c.id == request_id)
                )
            ).first()
            if row is None or row.request_body is None:
                return None
            return StoredBody(
                data=await compose_body(connection, row.request_body),
                content_type=_header(row.request_headers, "content-type"),
                content_encoding=_header(row.request_headers, "content-encoding"),
            )

        return await self._run(run)

    async def response_raw(self, request_id: uuid.UUID) -> StoredBody | None:
        async def run(connection: AsyncConnection) -> StoredBody | None:
            row = (
                await connection.execute(
                    select(exchanges.c.response_raw, exchanges.c.response_headers).where(exchanges.c.id == request_id)
                )
            ).first()
            if row is None or row.response_raw is None:
                return None
            return StoredBody(
                data=decompress_stored(row.response_raw),
                content_type=_header(row.response_headers, "content-type"),
                content_encoding=_header(row.response_headers, "content-encoding"),
            )

        return await self._run(run)

    async def request_exists(self, request_id: uuid.UUID) -> bool:
        async def run(connection: AsyncConnection) -> bool:
            found = await connection.scalar(select(exchanges.c.id).where(exchanges.c.id == request_id).limit(1))
            return found is not None

        return await self._run(run)

    async def stats(self, since: datetime, until: datetime) -> Stats:
        """Totals and the three breakdowns from one scan (``GROUPING SETS``), so they agree."""
        c = exchanges.c
        keys = {"model": _model, "request_type": c.request_type, "domain": c.domain}
        # grouping(model, request_type, domain) has a bit set for each key *not* grouped by.
        level = func.grouping(*keys.values()).label("level")
        levels = {0b111: "totals", 0b011: "model", 0b101: "request_type", 0b110: "domain"}
        statement = (
            select(level, *(key.label(name) for name, key in keys.items()), *exchange_aggregates())
            .where(c.ts >= since, c.ts < until)
            .group_by(func.grouping_sets(tuple_(), *keys.values()))
            .order_by(level, func.count().desc(), *(key.asc().nulls_last() for key in keys.values()))
        )

        async def run(connection: AsyncConnection) -> Stats:
            totals: UsageTotals | None = None
            groups: dict[str, list[UsageGroup]] = {name: [] for name in keys}
            for row in await connection.execute(statement):
                name = levels[row.level]
                if name == "totals":
                    totals = UsageTotals(**_totals_fields(row))
                else:
                    groups[name].append(UsageGroup(name=getattr(row, name), **_totals_fields(row)))
            assert totals is not None, "the empty grouping set gives a row even over no rows"
            return Stats(
                since=since,
                until=until,
                totals=totals,
                by_model=groups["model"],
                by_request_type=groups["request_type"],
                by_domain=groups["domain"],
            )

        return await self._run(run)

    async def domains(self, since: datetime, *, limit: int, offset: int) -> DomainPage:
        async def run(connection: AsyncConnection) -> DomainPage:
            seen = select(exchanges.c.domain).where(exchanges.c.ts >= since).group_by(exchanges.c.domain).subquery()
            total = await connection.scalar(select(func.count()).select_from(seen))
            rows = await connection.execute(
                select(exchanges.c.domain, func.count().label("requests"), func.max(exchanges.c.ts).label("last"))
                .where(exchanges.c.ts >= since)
                .group_by(exchanges.c.domain)
                .order_by(func.count().desc(), exchanges.c.domain.asc().nulls_last())
                .limit(limit)
                .offset(offset)
            )
            activity = [
                DomainActivity(domain=row.domain, requests=row.requests, last_request_at=row.last) for row in rows
            ]
            return DomainPage(domains=activity, total=total or 0)

        return await self._run(run)

    def _require_engine(self) -> AsyncEngine:
        return require_engine(self._engine)

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return await run_read(self._engine, work)


def require_engine(engine: AsyncEngine | None) -> AsyncEngine:
    if engine is None:
        raise QueriesUnavailable("Storage is off (STORAGE_ENABLED=false or no database): nothing is recorded")
    return engine


async def run_read(
    engine: AsyncEngine | None, work: Callable[[AsyncConnection], Awaitable[T]], *, snapshot: bool = False
) -> T:
    """Run ``work`` on a connection, a database outage raised as ``QueriesUnavailable``.

    With ``snapshot``, its statements all read one snapshot (``REPEATABLE READ``), so sums
    read by separate statements agree with each other.
    """
    connected = require_engine(engine)
    try:
        async with connected.connect() as connection:
            if not snapshot:
                return await work(connection)
            return await work(await connection.execution_options(isolation_level="REPEATABLE READ"))
    except Exception as exc:
        if (failure := read_failure(exc)) is None:
            raise
        raise QueriesUnavailable(failure) from None


# --- filters ------------------------------------------------------------------------------------


def _conditions(filters: RequestFilters) -> list[ColumnElement[bool]]:
    c = exchanges.c
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (c.domain, filters.domain),
        (c.account_id, filters.account_id),
        (c.request_type, filters.request_type),
        (c.status, filters.status),
        (c.state, filters.state),
        (c.conversation_id, filters.conversation_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if filters.model is not None:
        conditions.append(or_(c.model == filters.model, c.model_requested == filters.model))
    if filters.since is not None:
        conditions.append(c.ts >= filters.since)
    if filters.until is not None:
        conditions.append(c.ts < filters.until)
    if filters.text:
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                c.prompt_text.ilike(pattern, escape="\\"),
                cast(c.response_body, Text).ilike(pattern, escape="\\"),
                c.model.ilike(pattern, escape="\\"),
                c.model_requested.ilike(pattern, escape="\\"),
                c.path.ilike(pattern, escape="\\"),
                c.error.ilike(pattern, escape="\\"),
            )
        )
    return conditions


def _count(filters: RequestFilters) -> Select[int]:
    return select(func.count()).select_from(exchanges).where(*_conditions(filters))


def _count_up_to(filters: RequestFilters, bound: int) -> Select[int]:
    matches = select(exchanges.c.id).where(*_conditions(filters)).limit(bound).subquery()
    return select(func.count()).select_from(matches)


def _newest_first(filters: RequestFilters) -> Select[Any]:
    return select(*_SUMMARY_COLUMNS).where(*_conditions(filters)).order_by(exchanges.c.ts.desc(), exchanges.c.id.desc())


# --- rows to read models ------------------------------------------------------------------------


def _summary_fields(row: AnyRow) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "timestamp": row.ts,
        "domain": row.domain,
        "account_id": row.account_id,
        "method": row.method,
        "path": row.path,
        "model": row.model,
        "model_requested": row.model_requested,
        "request_type": row.request_type,
        "status": row.status,
        "stream": row.stream,
        "state": row.state,
        "error": row.error,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_creation_input_tokens": row.cache_creation_input_tokens,
        "cache_read_input_tokens": row.cache_read_input_tokens,
        "cost_usd": optional_cost_text(row.cost_usd),
        "duration_ms": row.duration_ms,
        "first_token_ms": row.first_token_ms,
        "tool_call_count": row.tool_call_count,
        "conversation_id": row.conversation_id,
        "branch_id": row.branch_id,
        "parent_request_id": row.parent_request_id,
        "is_subtask": row.is_subtask,
        "parent_task_request_id": row.parent_task_request_id,
    }


def _summary(row: AnyRow) -> RequestSummary:
    return RequestSummary(**_summary_fields(row))


def _detail(row: AnyRow, body: bytes | None) -> RequestDetail:
    return RequestDetail(
        **_summary_fields(row),
        upstream_request_id=row.upstream_request_id,
        query=row.query,
        user_agent=row.user_agent,
        session_id=row.session_id,
        agent_id=row.agent_id,
        cache_creation_5m_input_tokens=row.cache_creation_5m_input_tokens,
        cache_creation_1h_input_tokens=row.cache_creation_1h_input_tokens,
        price_version=row.price_version,
        request_headers=_header_map(row.request_headers),
        response_headers=_header_map(row.response_headers),
        request_body=_json_or_none(body),
        request_body_size=row.request_body_size,
        response_body=row.response_body,
        response_raw_size=row.response_raw_size,
        upstream_attempts=msgspec.convert(row.upstream_attempts or [], list[UpstreamAttempt]),
        link_pending=row.link_pending,
    )


def exchange_aggregates() -> tuple[ColumnElement[Any], ...]:
    """The sums and means of a group of exchanges (also the dashboard's minute series)."""
    c = exchanges.c
    is_error = or_(c.status >= 400, c.state.in_(sorted(ERROR_OUTCOMES)))
    return (
        func.count().label("requests"),
        func.count().filter(is_error).label("errors"),
        func.coalesce(func.sum(c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(c.cache_creation_input_tokens), 0).label("cache_creation_input_tokens"),
        func.coalesce(func.sum(c.cache_read_input_tokens), 0).label("cache_read_input_tokens"),
        func.coalesce(func.sum(c.cost_usd), 0).label("cost_usd"),
        func.avg(c.duration_ms).label("avg_duration_ms"),
        func.avg(c.first_token_ms).label("avg_first_token_ms"),
    )


def _totals_fields(row: AnyRow) -> dict[str, Any]:
    return {
        "requests": row.requests,
        "errors": row.errors,
        "input_tokens": int(row.input_tokens),
        "output_tokens": int(row.output_tokens),
        "cache_creation_input_tokens": int(row.cache_creation_input_tokens),
        "cache_read_input_tokens": int(row.cache_read_input_tokens),
        "cost_usd": cost_text(row.cost_usd),
        "avg_duration_ms": _float_or_none(row.avg_duration_ms),
        "avg_first_token_ms": _float_or_none(row.avg_first_token_ms),
    }


def _float_or_none(value: Any) -> float | None:
    """An average in milliseconds, to the microsecond."""
    return None if value is None else round(float(value), 3)


# --- bodies and headers -------------------------------------------------------------------------


def _json_or_none(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return json_text.encodable(json_text.loads(body))
    except (msgspec.DecodeError, RecursionError):
        return None


def _header_map(pairs: Sequence[Sequence[str]] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _header(pairs: Sequence[Sequence[str]] | None, wanted: str) -> str | None:
    return (_header_map(pairs) or {}).get(wanted)
