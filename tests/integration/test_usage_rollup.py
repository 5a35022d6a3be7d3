"""The hourly rollup ``usage_hourly`` on a real PostgreSQL: kept equal to a GROUP BY over
``exchanges`` by its writers (the store, the migration's backfill, the retention), and the
dashboard's reads of it equal to the same sums over the exchanges."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.dashboard_queries import SqlAlchemyDashboardQueries
from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_queries import SqlAlchemyExchangeQueries
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.hourly_rollup import add_to_rollup, drop_rollup_before, rebuild_rollup
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.persistence.partitions import maintain_partitions
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.dashboard_queries import SeriesPoint
from nexus.application.ports.exchange_queries import UsageGroup, UsageTotals
from nexus.application.recording.row import ExchangeRow

pytestmark = pytest.mark.integration

_COLUMNS = tuple(name for name in ExchangeRow.__struct_fields__ if name not in {"parts", "rate_limit"})
# The columns revision 0003's exchanges table has (0009 and 0010 add the others).
_COLUMNS_AT_0003 = tuple(name for name in _COLUMNS if name not in {"upstream_attempts", "prompt_text"})

# The rollup as a GROUP BY over exchanges, written out here independently of the migration.
GROUPED = """
SELECT date_trunc('hour', ts, 'UTC') AS hour, domain, account_id, coalesce(model, model_requested) AS model,
       request_type,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 400 OR state IN ('upstream_error', 'truncated')) AS errors,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
       coalesce(sum(cache_read_input_tokens), 0) AS cache_read_input_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       count(*) FILTER (WHERE output_tokens IS NOT NULL AND cost_usd IS NULL) AS unpriced_requests,
       sum(duration_ms) AS duration_ms_sum,
       coalesce(sum(first_token_ms), 0) AS first_token_ms_sum,
       count(first_token_ms) AS first_token_count
FROM exchanges GROUP BY 1, 2, 3, 4, 5
"""
ROLLUP = "SELECT * FROM usage_hourly"


def exchange(ts: datetime, n: int, **fields: Any) -> ExchangeRow:
    """A row as ``build_row`` makes them; durations are exact in binary, so sums compare equal."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "ts": ts,
        "upstream_request_id": None,
        "domain": "team.example",
        "account_id": "acc_team",
        "method": "POST",
        "path": "/v1/messages",
        "query": None,
        "status": 200,
        "state": "complete",
        "error": None,
        "stream": True,
        "request_type": "inference",
        "model_requested": "claude-sonnet-5",
        "model": "claude-sonnet-5-20260101",
        "user_agent": None,
        "session_id": None,
        "agent_id": None,
        "first_token_ms": 100.0 + n * 0.5,
        "duration_ms": 1000.0 + n * 0.25,
        "input_tokens": 10 + n,
        "output_tokens": 100 + n,
        "cache_creation_input_tokens": n % 3,
        "cache_read_input_tokens": 1000 * (n % 4),
        "cost_usd": Decimal("0.001000001") * (n + 1),
        "request_headers": [["host", "team.example"]],
        "response_headers": None,
    }
    values.update(fields)
    return ExchangeRow(**values)


def traffic(now: datetime) -> list[ExchangeRow]:
    """Rows over a few hours and every kind of key: no domain, no answered model, no type,
    errors by status and by state, no usage, no price, no first token."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows: list[ExchangeRow] = []
    for n in range(40):
        ts = hour - timedelta(hours=n % 5, minutes=(7 * n) % 60, seconds=n)
        variant = n % 8
        fields: dict[str, Any] = {}
        if variant == 1:
            fields = {"domain": "ci.example", "account_id": "acc_ci", "stream": False, "first_token_ms": None}
        elif variant == 2:
            fields = {"domain": None, "account_id": None, "request_type": "quota", "model": None}
        elif variant == 3:
            fields = {"status": 529, "state": "upstream_error", "model": None, "input_tokens": None,
                      "output_tokens": None, "cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                      "cost_usd": None, "first_token_ms": None}  # fmt: skip
        elif variant == 4:
            fields = {"state": "truncated"}
        elif variant == 5:
            fields = {"model": "claude-unknown-9", "cost_usd": None}  # tokens without a price
        elif variant == 6:
            fields = {"request_type": None, "model_requested": None, "model": None, "path": "/v1/models",
                      "method": "GET", "input_tokens": None, "output_tokens": None,
                      "cache_creation_input_tokens": None, "cache_read_input_tokens": None, "cost_usd": None,
                      "first_token_ms": None, "stream": False}  # fmt: skip
        elif variant == 7:
            fields = {"status": 400, "state": "complete", "cost_usd": None, "output_tokens": None}
        rows.append(exchange(ts, n, **fields))
    return rows


async def insert_new(connection: AsyncConnection, rows: Sequence[ExchangeRow]) -> list[ExchangeRow]:
    """Insert as the store does (``ON CONFLICT DO NOTHING``); the rows its INSERT created."""
    created = await connection.execute(
        insert(exchanges).on_conflict_do_nothing().returning(exchanges.c.id),
        [{name: getattr(row, name) for name in _COLUMNS} | {"is_subtask": False} for row in rows],
    )
    ids = {found.id for found in created}
    return [row for row in rows if row.id in ids]


async def fetch(engine: AsyncEngine, sql: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Rows by their rollup key."""
    async with engine.connect() as connection:
        rows = (await connection.execute(text(sql))).mappings().all()
    keys = ("hour", "domain", "account_id", "model", "request_type")
    return {tuple(row[k] for k in keys): {k: v for k, v in row.items() if k not in keys} for row in rows}


async def assert_rollup_is_the_group_by(engine: AsyncEngine) -> None:
    expected = await fetch(engine, GROUPED)
    assert expected, "some exchanges"
    assert await fetch(engine, ROLLUP) == expected


async def test_added_rows_make_the_rollup_equal_to_a_group_by_and_a_replay_adds_nothing(database_url: str) -> None:
    rows = traffic(datetime.now(UTC))
    async with open_engine(database_url) as engine:
        await upgrade(engine)
        for batch in (rows[:15], rows[15:]):
            async with engine.begin() as connection:
                await add_to_rollup(connection, await insert_new(connection, batch))
        await assert_rollup_is_the_group_by(engine)
        before = await fetch(engine, ROLLUP)

        # A replay (the journal after a crash, a retried batch): the INSERT creates nothing.
        async with engine.begin() as connection:
            created = await insert_new(connection, rows[10:30])
            await add_to_rollup(connection, created)
        assert created == []
        assert await fetch(engine, ROLLUP) == before
        await assert_rollup_is_the_group_by(engine)


async def test_the_rollup_adds_exactly_the_rows_it_is_given(database_url: str) -> None:
    """Its contract: what it is handed, once per call, whatever the table holds already."""
    now = datetime.now(UTC)
    one = exchange(now, 1)
    async with open_engine(database_url) as engine:
        await upgrade(engine)
        async with engine.begin() as connection:
            await add_to_rollup(connection, [one, one])
            await add_to_rollup(connection, [])
            await add_to_rollup(connection, [one])
        async with engine.connect() as connection:
            stored = (await connection.execute(text(ROLLUP))).mappings().one()
    assert stored["hour"] == now.replace(minute=0, second=0, microsecond=0)
    assert stored["model"] == "claude-sonnet-5-20260101"
    assert (stored["requests"], stored["output_tokens"], stored["cost_usd"]) == (3, 3 * 101, 3 * Decimal("0.002000002"))
    assert (stored["duration_ms_sum"], stored["first_token_count"]) == (3 * 1000.25, 3)


async def test_rows_stored_through_the_store_reach_the_rollup_once(database_url: str) -> None:
    rows = traffic(datetime.now(UTC))
    async with open_engine(database_url) as engine:
        store = SqlAlchemyExchangeStore(engine)
        await store.store(rows[:25])
        await store.store(rows)  # a replay of the first 25 with the rest
        await store.store(rows[30:])
        await assert_rollup_is_the_group_by(engine)


async def test_the_migration_backfills_the_rollup_from_the_stored_exchanges(database_url: str) -> None:
    rows = traffic(datetime.now(UTC))
    async with open_engine(database_url) as engine:
        await upgrade(engine, "0003")
        async with engine.begin() as connection:
            await connection.execute(
                insert(exchanges),
                [{name: getattr(row, name) for name in _COLUMNS_AT_0003} | {"is_subtask": False} for row in rows],
            )
        await upgrade(engine)
        await assert_rollup_is_the_group_by(engine)

        # The rebuild (for rows written into exchanges by other means) gives the same.
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM exchanges WHERE domain = 'ci.example'"))
            assert await rebuild_rollup(connection) == len(await fetch_keys(connection))
        await assert_rollup_is_the_group_by(engine)


async def fetch_keys(connection: AsyncConnection) -> list[Any]:
    return list((await connection.execute(text(GROUPED))).all())


async def test_the_retention_drops_the_hours_of_the_partitions_it_drops(database_url: str) -> None:
    january, march = datetime(2025, 1, 15, 10, 30, tzinfo=UTC), datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)
    async with open_engine(database_url) as engine:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(text("SELECT nexus_ensure_exchange_partitions('2025-01-01', 3)"))
            await add_to_rollup(connection, await insert_new(connection, [exchange(january, 1), exchange(march, 2)]))
        dropped = await maintain_partitions(engine, now=datetime(2025, 5, 10, tzinfo=UTC), retention_days=45)
        assert dropped == ["exchanges_2025_01", "exchanges_2025_02"]
        assert [key[0] for key in await fetch(engine, ROLLUP)] == [datetime(2025, 3, 31, 23, tzinfo=UTC)]
        await assert_rollup_is_the_group_by(engine)

        async with engine.begin() as connection:
            await drop_rollup_before(connection, datetime(2025, 3, 31, 23, tzinfo=UTC))
        assert len(await fetch(engine, ROLLUP)) == 1, "the hour given is kept"
        async with engine.begin() as connection:
            await drop_rollup_before(connection, datetime(2025, 4, 1, tzinfo=UTC))
        assert await fetch(engine, ROLLUP) == {}


# --- the dashboard's reads ---------------------------------------------------------------------


def _figures(totals: UsageTotals) -> tuple[Any, ...]:
    return (
        totals.requests,
        totals.errors,
        totals.input_tokens,
        totals.output_tokens,
        totals.cache_creation_input_tokens,
        totals.cache_read_input_tokens,
        totals.cost_usd,
        *(None if avg is None else round(avg, 6) for avg in (totals.avg_duration_ms, totals.avg_first_token_ms)),
    )


def _groups(groups: list[UsageGroup]) -> dict[str | None, tuple[Any, ...]]:
    return {group.name: _figures(group) for group in groups}


def _point(point: SeriesPoint) -> tuple[Any, ...]:
    return (point.start, point.requests, point.errors, point.output_tokens, Decimal(point.cost_usd))


def midnight_of(instant: datetime) -> datetime:
    return datetime.combine(instant.astimezone(UTC).date(), time(), UTC)


def _expected_series(rows: list[ExchangeRow], starts: list[datetime], step: str) -> list[tuple[Any, ...]]:
    """Each bucket's sums over the rows, written out with datetime's own truncation."""
    cut = {
        "minute": lambda ts: ts.replace(second=0, microsecond=0),
        "hour": lambda ts: ts.replace(minute=0, second=0, microsecond=0),
        "day": midnight_of,
    }[step]
    members: dict[datetime, list[ExchangeRow]] = {start: [] for start in starts}
    for row in rows:
        members[cut(row.ts.astimezone(UTC))].append(row)
    return [
        (
            start,
            len(chosen),
            sum(1 for row in chosen if row.status >= 400 or row.state in {"upstream_error", "truncated"}),
            sum(row.output_tokens or 0 for row in chosen),
            sum((row.cost_usd or Decimal(0) for row in chosen), Decimal(0)),
        )
        for start, chosen in members.items()
    ]


async def test_the_dashboard_reads_equal_the_sums_over_the_exchanges(database_url: str) -> None:
    now = datetime.now(UTC)
    rows = traffic(now)
    async with open_engine(database_url) as engine:
        await upgrade(engine)
        async with engine.begin() as connection:
            await add_to_rollup(connection, await insert_new(connection, rows))
        dashboard = SqlAlchemyDashboardQueries(engine)
        raw = SqlAlchemyExchangeQueries(engine)
        hour = now.replace(minute=0, second=0, microsecond=0)
        until = hour + timedelta(hours=1)
        for since in (hour - timedelta(hours=3), hour - timedelta(hours=24)):
            for domain in (None, "ci.example"):
                overview = await dashboard.overview(since, until, domain=domain)
                chosen = [row for row in rows if row.ts >= since and (domain is None or row.domain == domain)]
                assert overview.since == since
                assert overview.totals.requests == len(chosen)
                if domain is None:
                    stats = await raw.stats(since, until)
                    assert _figures(overview.totals) == _figures(stats.totals)
                    assert _groups(overview.by_model) == _groups(stats.by_model)
                    assert _groups(overview.by_request_type) == _groups(stats.by_request_type)
                    assert _groups(overview.by_domain) == _groups(stats.by_domain)
                accounts: dict[str | None, int] = {}
                for row in chosen:
                    accounts[row.account_id] = accounts.get(row.account_id, 0) + 1
                assert {group.name: group.requests for group in overview.by_account} == accounts
                assert [group.requests for group in overview.by_account] == sorted(accounts.values(), reverse=True)
                # Every hour of the period, those without requests as zeros.
                hours = [since + timedelta(hours=n) for n in range((until - since) // timedelta(hours=1))]
                assert overview.step == "hour"
                assert [_point(point) for point in overview.series] == _expected_series(chosen, hours, "hour")
                # The same rows per UTC day (the first one from the period's start) and per minute.
                by_day = await dashboard.overview(since, until, domain=domain, step="day")
                first_day = midnight_of(since)
                days = [first_day + timedelta(days=n) for n in range(-(-(until - first_day) // timedelta(days=1)))]
                assert [_point(point) for point in by_day.series] == _expected_series(chosen, days, "day")
                assert by_day.totals == overview.totals
                by_minute = await dashboard.overview(since, until, domain=domain, step="minute")
                minutes = [since + timedelta(minutes=n) for n in range((until - since) // timedelta(minutes=1))]
                assert [_point(point) for point in by_minute.series] == _expected_series(chosen, minutes, "minute")
                assert sum(point.requests for point in by_minute.series) == by_minute.totals.requests

        # A period starting within an hour starts at that hour.
        partial = await dashboard.overview(hour - timedelta(hours=2, minutes=20), until, domain=None)
        assert partial.since == hour - timedelta(hours=3)
        assert partial.totals.requests == len([row for row in rows if row.ts >= hour - timedelta(hours=3)])
        empty = await dashboard.overview(until, until + timedelta(hours=1), domain=None)
        assert (empty.totals.requests, empty.totals.cost_usd, empty.totals.avg_duration_ms) == (0, "0.000000000", None)
        assert empty.by_domain == []
        assert [(point.start, point.requests, point.cost_usd) for point in empty.series] == [(until, 0, "0.000000000")]

        points = await dashboard.hourly_by_domain(hour - timedelta(hours=6), until, domain=None)
        cells: dict[tuple[datetime, str | None], int] = {}
        for row in rows:
            key = (row.ts.replace(minute=0, second=0, microsecond=0), row.domain)
            cells[key] = cells.get(key, 0) + (row.input_tokens or 0) + (row.output_tokens or 0)
        assert {(p.hour, p.domain): p.input_tokens + p.output_tokens for p in points} == cells
        assert [p.hour for p in points] == sorted(p.hour for p in points)
        only = await dashboard.hourly_by_domain(hour - timedelta(hours=4), until, domain="ci.example")
        assert {p.domain for p in only} == {"ci.example"}

        today = now.date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)
        days = await dashboard.daily("acc_team", midnight, now, domain=None)
        expected: dict[date, list[ExchangeRow]] = {}
        for row in rows:
            if row.account_id == "acc_team":
                expected.setdefault(row.ts.date(), []).append(row)
        assert [(d.day, d.requests, d.output_tokens, Decimal(d.cost_usd), d.unpriced_requests) for d in days] == [
            (
                day,
                len(members),
                sum(row.output_tokens or 0 for row in members),
                sum((row.cost_usd or Decimal(0) for row in members), Decimal(0)),
                sum(1 for row in members if row.output_tokens is not None and row.cost_usd is None),
            )
            for day, members in sorted(expected.items())
        ]
        assert await dashboard.daily("acc_team", midnight, now, domain="ci.example") == []

        assert await dashboard.domains(now - timedelta(days=1)) == ["team.example", "ci.example"]
