"""Each account's latest unified rate-limit snapshot, upserted with the rows that carry one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from nexus.adapters.persistence.tables import account_rate_limits
from nexus.application.recording.row import ExchangeRow


def latest_snapshots(rows: Sequence[ExchangeRow]) -> list[dict[str, Any]]:
    """One record per account: the snapshot of its latest row in the batch that has one."""
    latest: dict[str, ExchangeRow] = {}
    for row in rows:
        if row.rate_limit is None or not row.account_id:
            continue
        current = latest.get(row.account_id)
        if current is None or row.ts > current.ts:
            latest[row.account_id] = row
    return [_record(account_id, row) for account_id, row in sorted(latest.items())]


async def upsert_snapshots(connection: AsyncConnection, rows: Sequence[ExchangeRow]) -> None:
    """Keep each account's newest snapshot; an older one (a journal replay) changes nothing.

    ``status_since`` moves only when the status changes.
    """
    records = latest_snapshots(rows)
    if not records:
        return
    table = account_rate_limits
    statement = insert(table).values(records)
    excluded = statement.excluded
    kept = {"account_id", "status_since"}
    updates: dict[str, Any] = {
        column.name: excluded[column.name] for column in table.columns if column.name not in kept
    }
    updates["status_since"] = case(
        (table.c.status.is_distinct_from(excluded.status), excluded.seen_at), else_=table.c.status_since
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.account_id], set_=updates, where=table.c.seen_at < excluded.seen_at
        )
    )


def _record(account_id: str, row: ExchangeRow) -> dict[str, Any]:
    limit = row.rate_limit
    assert limit is not None
    return {
        "account_id": account_id,
        "seen_at": row.ts,
        "exchange_id": row.id,
        "domain": row.domain,
        "status": limit.status,
        "status_since": row.ts,
        "reset_at": _instant(limit.reset),
        "representative_claim": limit.representative_claim,
        "five_hour_status": limit.five_hour_status,
        "five_hour_utilization": limit.five_hour_utilization,
        "five_hour_reset_at": _instant(limit.five_hour_reset),
        "seven_day_status": limit.seven_day_status,
        "seven_day_utilization": limit.seven_day_utilization,
        "seven_day_reset_at": _instant(limit.seven_day_reset),
        "overage_status": limit.overage_status,
        "overage_disabled_reason": limit.overage_disabled_reason,
        "headers": limit.headers,
    }


def _instant(epoch_s: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, tz=UTC) if epoch_s is not None else None
