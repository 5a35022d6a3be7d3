"""``usage_hourly``: the exchanges summed per UTC hour, domain, account, model and request type.

The dashboard's totals, breakdowns and series read it instead of scanning ``exchanges``. Its
writers keep it in step: the store adds the rows its INSERT created, in the same transaction
(``add_to_rollup``); retention drops the hours of the partitions it drops
(``drop_rollup_before``); ``rebuild_rollup`` recomputes it all from ``exchanges`` (the
migration's backfill, and rows written into ``exchanges`` by other means, as tests and the
benchmark do).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from nexus.adapters.persistence.tables import usage_hourly
from nexus.application.recording.row import ExchangeRow
from nexus.domain.outcome import is_error

KEY = ("hour", "domain", "account_id", "model", "request_type")
SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
    "unpriced_requests",
    "duration_ms_sum",
    "first_token_ms_sum",
    "first_token_count",
)
# One statement of constant shape whatever the batch (an array per column: no parameter limit,
# prepared once); the keys come sorted, so concurrent batches lock the keys they share in order.
_ADD = text(
    """
    INSERT INTO usage_hourly (
        hour, domain, account_id, model, request_type, requests, errors, input_tokens, output_tokens,
        cache_creation_input_tokens, cache_read_input_tokens, cost_usd, unpriced_requests, duration_ms_sum,
        first_token_ms_sum, first_token_count
    )
    SELECT * FROM unnest(
        CAST(:hour AS timestamptz[]), CAST(:domain AS text[]), CAST(:account_id AS text[]), CAST(:model AS text[]),
        CAST(:request_type AS text[]), CAST(:requests AS bigint[]), CAST(:errors AS bigint[]),
        CAST(:input_tokens AS bigint[]), CAST(:output_tokens AS bigint[]),
        CAST(:cache_creation_input_tokens AS bigint[]), CAST(:cache_read_input_tokens AS bigint[]),
        CAST(:cost_usd AS numeric[]), CAST(:unpriced_requests AS bigint[]), CAST(:duration_ms_sum AS float8[]),
        CAST(:first_token_ms_sum AS float8[]), CAST(:first_token_count AS bigint[])
    )
    ON CONFLICT (hour, domain, account_id, model, request_type) DO UPDATE SET
        requests = usage_hourly.requests + excluded.requests,
        errors = usage_hourly.errors + excluded.errors,
        input_tokens = usage_hourly.input_tokens + excluded.input_tokens,
        output_tokens = usage_hourly.output_tokens + excluded.output_tokens,
        cache_creation_input_tokens = usage_hourly.cache_creation_input_tokens + excluded.cache_creation_input_tokens,
        cache_read_input_tokens = usage_hourly.cache_read_input_tokens + excluded.cache_read_input_tokens,
        cost_usd = usage_hourly.cost_usd + excluded.cost_usd,
        unpriced_requests = usage_hourly.unpriced_requests + excluded.unpriced_requests,
        duration_ms_sum = usage_hourly.duration_ms_sum + excluded.duration_ms_sum,
        first_token_ms_sum = usage_hourly.first_token_ms_sum + excluded.first_token_ms_sum,
        first_token_count = usage_hourly.first_token_count + excluded.first_token_count
    """
)

_Key = tuple[datetime, str | None, str | None, str | None, str | None]


async def add_to_rollup(connection: AsyncConnection, rows: Sequence[ExchangeRow]) -> None:
    """Add these exchanges to their hours: exactly what is given, so pass only the rows the
    caller's INSERT created (``RETURNING``), in its transaction: a replayed row already stored
    must not be passed again.

    The rows are summed per key here, then upserted in one statement (``ON CONFLICT ... DO
    UPDATE`` adding to the stored sums).
    """
    if not rows:
        return
    sums: dict[_Key, list[Any]] = {}
    for row in rows:
        ts = row.ts
        hour = ts.replace(minute=0, second=0, microsecond=0) if ts.tzinfo is UTC else hour_of(ts)
        model = row.model if row.model is not None else row.model_requested
        key: _Key = (hour, row.domain, row.account_id, model, row.request_type)
        entry = sums.get(key)
        if entry is None:
            # In the order of SUMS.
            entry = sums[key] = [0, 0, 0, 0, 0, 0, Decimal(0), 0, 0.0, 0.0, 0]
        entry[0] += 1
        if is_error(row.status, row.state):
            entry[1] += 1
        entry[2] += row.input_tokens or 0
        entry[3] += row.output_tokens or 0
        entry[4] += row.cache_creation_input_tokens or 0
        entry[5] += row.cache_read_input_tokens or 0
        if row.cost_usd is not None:
            entry[6] += row.cost_usd
        elif row.output_tokens is not None:
            entry[7] += 1
        entry[8] += row.duration_ms
        if row.first_token_ms is not None:
            entry[9] += row.first_token_ms
            entry[10] += 1
    keys = sorted(sums, key=_order)
    columns = [list(column) for column in zip(*(key + tuple(sums[key]) for key in keys), strict=True)]
    await connection.execute(_ADD, dict(zip((*KEY, *SUMS), columns, strict=True)))


async def drop_rollup_before(connection: AsyncConnection, hour: datetime) -> None:
    """Forget the hours before ``hour`` (their exchanges were dropped by the retention)."""
    await connection.execute(delete(usage_hourly).where(usage_hourly.c.hour < hour))


async def rebuild_rollup(connection: AsyncConnection) -> int:
    """Recompute the whole rollup from ``exchanges`` (``nexus_rebuild_usage_hourly()``, which
    locks out the writers meanwhile); the number of rows it holds."""
    written = await connection.scalar(select(func.nexus_rebuild_usage_hourly()))
    return int(written or 0)


def hour_of(instant: datetime) -> datetime:
    """The UTC hour holding ``instant`` (a naive one is taken as UTC)."""
    aware = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    return aware.replace(minute=0, second=0, microsecond=0)


def _order(key: _Key) -> tuple[Any, ...]:
    hour, *names = key
    return (hour, *((name is None, name or "") for name in names))
