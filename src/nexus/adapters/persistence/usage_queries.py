"""Token usage per account from ``exchanges``, in SQL (SQLAlchemy Core on ``tables.py``).

Every query filters on ``(account_id, ts)``, the index ``exchanges_account_ts``; the month
partitions outside the window are pruned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Date, Row, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.db_errors import read_failure
from nexus.adapters.persistence.tables import account_rate_limits, exchanges
from nexus.application.ports.usage_queries import (
    AccountTotals,
    BucketTotals,
    DayTotals,
    DomainTotals,
    RateLimitSnapshot,
    TokenTotals,
    UsageFilter,
    UsageUnavailable,
)
from nexus.domain.rate_limits import UnifiedRateLimit

T = TypeVar("T")

_TOTALS = (
    func.count().label("requests"),
    func.coalesce(func.sum(exchanges.c.input_tokens), 0).label("input_tokens"),
    func.coalesce(func.sum(exchanges.c.output_tokens), 0).label("output_tokens"),
    func.coalesce(func.sum(exchanges.c.cache_creation_input_tokens), 0).label("cache_creation_input_tokens"),
    func.coalesce(func.sum(exchanges.c.cache_read_input_tokens), 0).label("cache_read_input_tokens"),
    func.coalesce(func.sum(exchanges.c.cost_usd), 0).label("cost_usd"),
    func.count()
    .filter(and_(exchanges.c.output_tokens.is_not(None), exchanges.c.cost_usd.is_(None)))
    .label("unpriced_requests"),
)


class SqlAlchemyUsageQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def accounts(self, since: datetime, until: datetime) -> list[AccountTotals]:
        statement = (
            select(exchanges.c.account_id, exchanges.c.domain, *_TOTALS)
            .where(exchanges.c.account_id.is_not(None), exchanges.c.ts >= since, exchanges.c.ts < until)
            .group_by(exchanges.c.account_id, exchanges.c.domain)
            .order_by(exchanges.c.account_id, exchanges.c.domain)
        )
        rows = await self._run(lambda connection: _all(connection, statement))
        by_account: dict[str, list[DomainTotals]] = {}
        for row in rows:
            by_account.setdefault(row.account_id, []).append(DomainTotals(domain=row.domain, totals=_totals(row)))
        return [
            AccountTotals(account_id=account_id, totals=_sum(domain.totals for domain in domains), domains=domains)
            for account_id, domains in by_account.items()
        ]

    async def totals(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> TokenTotals:
        statement = select(*_TOTALS).where(*_window(account_id, since, until, where))
        rows = await self._run(lambda connection: _all(connection, statement))
        return _totals(rows[0])

    async def daily(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> list[DayTotals]:
        day = cast(func.timezone("UTC", exchanges.c.ts), Date).label("day")
        statement = select(day, *_TOTALS).where(*_window(account_id, since, until, where)).group_by(day).order_by(day)
        rows = await self._run(lambda connection: _all(connection, statement))
        return [DayTotals(day=row.day, totals=_totals(row)) for row in rows]

    async def buckets(
        self, account_id: str, since: datetime, until: datetime, interval_minutes: int, where: UsageFilter
    ) -> list[BucketTotals]:
        seconds = interval_minutes * 60
        start = func.to_timestamp(func.floor(func.extract("epoch", exchanges.c.ts) / seconds) * seconds).label("start")
        statement = (
            select(start, *_TOTALS).where(*_window(account_id, since, until, where)).group_by(start).order_by(start)
        )
        rows = await self._run(lambda connection: _all(connection, statement))
        return [BucketTotals(start=row.start, totals=_totals(row)) for row in rows]

    async def rate_limits(self, account_ids: Sequence[str]) -> dict[str, RateLimitSnapshot]:
        if not account_ids:
            return {}
        statement = select(account_rate_limits).where(account_rate_limits.c.account_id.in_(list(account_ids)))
        rows = await self._run(lambda connection: _all(connection, statement))
        return {row.account_id: _snapshot(row) for row in rows}

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with self._engine.connect() as connection:
                return await work(connection)
        except Exception as exc:
            if (failure := read_failure(exc)) is None:
                raise
            raise UsageUnavailable(failure) from None


async def _all(connection: AsyncConnection, statement: Any) -> list[Row[Any]]:
    return list((await connection.execute(statement)).all())


def _window(account_id: str, since: datetime, until: datetime, where: UsageFilter) -> list[ColumnElement[bool]]:
    conditions = [exchanges.c.account_id == account_id, exchanges.c.ts >= since, exchanges.c.ts < until]
    if where.domain is not None:
        conditions.append(exchanges.c.domain == where.domain)
    if where.model is not None:
        conditions.append(or_(exchanges.c.model == where.model, exchanges.c.model_requested == where.model))
    return conditions


def _totals(row: Row[Any]) -> TokenTotals:
    return TokenTotals(
        requests=row.requests,
        input_tokens=int(row.input_tokens),
        output_tokens=int(row.output_tokens),
        cache_creation_input_tokens=int(row.cache_creation_input_tokens),
        cache_read_input_tokens=int(row.cache_read_input_tokens),
        cost_usd=Decimal(row.cost_usd),
        unpriced_requests=row.unpriced_requests,
    )


def _sum(parts: Any) -> TokenTotals:
    total: dict[str, Any] = {}
    for part in parts:
        for name in TokenTotals.__struct_fields__:
            total[name] = total.get(name, 0) + getattr(part, name)
    return TokenTotals(**total)


def _snapshot(row: Row[Any]) -> RateLimitSnapshot:
    return RateLimitSnapshot(
        account_id=row.account_id,
        domain=row.domain,
        seen_at=row.seen_at,
        status_since=row.status_since,
        exchange_id=row.exchange_id,
        limit=UnifiedRateLimit(
            status=row.status,
            reset=_epoch(row.reset_at),
            representative_claim=row.representative_claim,
            five_hour_status=row.five_hour_status,
            five_hour_utilization=row.five_hour_utilization,
            five_hour_reset=_epoch(row.five_hour_reset_at),
            seven_day_status=row.seven_day_status,
            seven_day_utilization=row.seven_day_utilization,
            seven_day_reset=_epoch(row.seven_day_reset_at),
            overage_status=row.overage_status,
            overage_disabled_reason=row.overage_disabled_reason,
            headers=dict(row.headers or {}),
        ),
    )


def _epoch(instant: datetime | None) -> int | None:
    return int(instant.timestamp()) if instant is not None else None
