"""The overview's reads: one grouped scan for totals and breakdowns, one for the hourly series."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import _aggregates, _model, _totals_fields, run_read
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.dashboard_queries import HourPoint, Overview
from nexus.application.ports.exchange_queries import UsageGroup, UsageTotals

_MAX_DOMAINS = 200


class SqlAlchemyDashboardQueries:
    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    async def overview(self, since: datetime, until: datetime, *, domain: str | None) -> Overview:
        c = exchanges.c
        where: list[ColumnElement[bool]] = [c.ts >= since, c.ts < until]
        if domain is not None:
            where.append(c.domain == domain)
        keys = {"model": _model, "request_type": c.request_type, "domain": c.domain, "account": c.account_id}
        level = func.grouping(*keys.values()).label("level")
        names = {0b1111: "totals", 0b0111: "model", 0b1011: "request_type", 0b1101: "domain", 0b1110: "account"}
        grouped = (
            select(level, *(key.label(name) for name, key in keys.items()), *_aggregates())
            .where(*where)
            .group_by(func.grouping_sets(tuple_(), *keys.values()))
            .order_by(level, func.count().desc())
        )
        hour = func.date_trunc("hour", c.ts).label("hour")
        hourly = select(hour, *_aggregates()).where(*where).group_by(hour).order_by(hour)

        async def run(connection: AsyncConnection) -> Overview:
            totals: UsageTotals | None = None
            groups: dict[str, list[UsageGroup]] = {name: [] for name in keys}
            for row in await connection.execute(grouped):
                name = names[row.level]
                if name == "totals":
                    totals = UsageTotals(**_totals_fields(row))
                else:
                    groups[name].append(UsageGroup(name=getattr(row, name), **_totals_fields(row)))
            assert totals is not None
            points = [_hour_point(row) for row in await connection.execute(hourly)]
            return Overview(
                since=since,
                until=until,
                domain=domain,
                totals=totals,
                by_model=groups["model"],
                by_request_type=groups["request_type"],
                by_domain=groups["domain"],
                by_account=groups["account"],
                hourly=points,
            )

        return await run_read(self._engine, run, snapshot=True)

    async def domains(self, since: datetime) -> list[str]:
        c = exchanges.c
        statement = (
            select(c.domain)
            .where(c.ts >= since, c.domain.is_not(None))
            .group_by(c.domain)
            .order_by(func.count().desc())
            .limit(_MAX_DOMAINS)
        )

        async def run(connection: AsyncConnection) -> list[str]:
            return [row.domain for row in await connection.execute(statement)]

        return await run_read(self._engine, run)


def _hour_point(row: Any) -> HourPoint:
    fields = _totals_fields(row)
    return HourPoint(
        hour=row.hour,
        **{name: fields[name] for name in HourPoint.__struct_fields__ if name != "hour"},
    )
