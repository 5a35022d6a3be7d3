"""The dashboard's reads, from the hourly rollup ``usage_hourly`` (``hourly_rollup.py``): its
rows are a few per hour whatever the traffic, so a month is read in one short scan.

Periods are whole hours: ``since`` is rounded down to its UTC hour and the hour holding
``until`` is read whole (see the port).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import AnyRow, run_read
from nexus.adapters.persistence.hourly_rollup import hour_of
from nexus.adapters.persistence.tables import usage_hourly
from nexus.adapters.persistence.time_series import fold, minute_sums
from nexus.application.ports.dashboard_queries import DayPoint, DomainHourPoint, Overview
from nexus.application.ports.exchange_queries import UsageGroup, UsageTotals
from nexus.domain.pricing import cost_text
from nexus.domain.time_buckets import Step

_MAX_DOMAINS = 200
_TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")

_u = usage_hourly.c


class SqlAlchemyDashboardQueries:
    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    async def overview(self, since: datetime, until: datetime, *, domain: str | None, step: Step = "hour") -> Overview:
        """Totals, the four breakdowns and the hourly series in one statement (``GROUPING SETS``),
        so they agree; hours are folded into days in Python, minutes read from ``exchanges``
        in the same snapshot."""
        start = hour_of(since)
        keys = {
            "model": _u.model,
            "request_type": _u.request_type,
            "domain": _u.domain,
            "account": _u.account_id,
            "hour": _u.hour,
        }
        # grouping(...) has a bit set for each key *not* grouped by, the first key highest.
        level = func.grouping(*keys.values()).label("level")
        names = {
            0b11111: "totals",
            0b01111: "model",
            0b10111: "request_type",
            0b11011: "domain",
            0b11101: "account",
            0b11110: "hour",
        }
        requests = func.coalesce(func.sum(_u.requests), 0)
        statement = (
            select(level, *(key.label(name) for name, key in keys.items()), *_sums(), *_timings())
            .where(*_period(start, until, domain))
            .group_by(func.grouping_sets(tuple_(), *keys.values()))
            .order_by(level, requests.desc(), *(key.asc().nulls_last() for key in keys.values()))
        )

        async def run(connection: AsyncConnection) -> Overview:
            totals: UsageTotals | None = None
            groups: dict[str, list[UsageGroup]] = {name: [] for name in keys if name != "hour"}
            hours: list[tuple[datetime, AnyRow]] = []
            for row in await connection.execute(statement):
                name = names[row.level]
                if name == "totals":
                    totals = UsageTotals(**_totals_fields(row))
                elif name == "hour":
                    hours.append((row.hour, row))
                else:
                    groups[name].append(UsageGroup(name=getattr(row, name), **_totals_fields(row)))
            assert totals is not None, "the empty grouping set gives a row even over no rows"
            if step == "minute":
                minutes = await connection.execute(minute_sums(start, until, domain))
                series = fold(((row.minute, row) for row in minutes), start, until, step)
            else:
                series = fold(hours, start, until, step)
            return Overview(
                since=start,
                until=until,
                domain=domain,
                totals=totals,
                by_model=groups["model"],
                by_request_type=groups["request_type"],
                by_domain=groups["domain"],
                by_account=groups["account"],
                step=step,
                series=series,
            )

        return await run_read(self._engine, run, snapshot=step == "minute")

    async def hourly_by_domain(self, since: datetime, until: datetime, *, domain: str | None) -> list[DomainHourPoint]:
        statement = (
            select(_u.hour, _u.domain, *_sums())
            .where(*_period(hour_of(since), until, domain))
            .group_by(_u.hour, _u.domain)
            .order_by(_u.hour, _u.domain.asc().nulls_last())
        )

        async def run(connection: AsyncConnection) -> list[DomainHourPoint]:
            return [
                DomainHourPoint(hour=row.hour, domain=row.domain, **_point_fields(row))
                for row in await connection.execute(statement)
            ]

        return await run_read(self._engine, run)

    async def daily(self, account_id: str, since: datetime, until: datetime, *, domain: str | None) -> list[DayPoint]:
        day = cast(func.timezone("UTC", _u.hour), Date).label("day")
        statement = (
            select(day, *_sums(), func.coalesce(func.sum(_u.unpriced_requests), 0).label("unpriced_requests"))
            .where(_u.account_id == account_id, *_period(hour_of(since), until, domain))
            .group_by(day)
            .order_by(day)
        )

        async def run(connection: AsyncConnection) -> list[DayPoint]:
            return [
                DayPoint(
                    day=row.day,
                    requests=int(row.requests),
                    **{name: int(getattr(row, name)) for name in _TOKENS},
                    cost_usd=cost_text(row.cost_usd),
                    unpriced_requests=int(row.unpriced_requests),
                )
                for row in await connection.execute(statement)
            ]

        return await run_read(self._engine, run)

    async def domains(self, since: datetime) -> list[str]:
        statement = (
            select(_u.domain)
            .where(_u.hour >= hour_of(since), _u.domain.is_not(None))
            .group_by(_u.domain)
            .order_by(func.sum(_u.requests).desc(), _u.domain)
            .limit(_MAX_DOMAINS)
        )

        async def run(connection: AsyncConnection) -> list[str]:
            return [row.domain for row in await connection.execute(statement)]

        return await run_read(self._engine, run)


def _period(start: datetime, until: datetime, domain: str | None) -> list[ColumnElement[bool]]:
    """The hours from ``start``'s to ``until``'s, that one included (its start is before it)."""
    where: list[ColumnElement[bool]] = [_u.hour >= start, _u.hour < until]
    if domain is not None:
        where.append(_u.domain == domain)
    return where


def _sums() -> tuple[ColumnElement[Any], ...]:
    return (
        func.coalesce(func.sum(_u.requests), 0).label("requests"),
        func.coalesce(func.sum(_u.errors), 0).label("errors"),
        *(func.coalesce(func.sum(_u[name]), 0).label(name) for name in _TOKENS),
        func.coalesce(func.sum(_u.cost_usd), 0).label("cost_usd"),
    )


def _timings() -> tuple[ColumnElement[Any], ...]:
    return (
        func.sum(_u.duration_ms_sum).label("duration_ms_sum"),
        func.sum(_u.first_token_ms_sum).label("first_token_ms_sum"),
        func.sum(_u.first_token_count).label("first_token_count"),
    )


def _point_fields(row: AnyRow) -> dict[str, Any]:
    return {
        "requests": int(row.requests),
        "errors": int(row.errors),
        **{name: int(getattr(row, name)) for name in _TOKENS},
        "cost_usd": cost_text(row.cost_usd),
    }


def _totals_fields(row: AnyRow) -> dict[str, Any]:
    """With the averages per request, as ``avg()`` over the exchanges gives them (None over none)."""
    fields = _point_fields(row)
    return {
        **fields,
        "avg_duration_ms": _mean(row.duration_ms_sum, fields["requests"]),
        "avg_first_token_ms": _mean(row.first_token_ms_sum, int(row.first_token_count or 0)),
    }


def _mean(total: float | None, count: int) -> float | None:
    return round(float(total) / count, 3) if total is not None and count else None
