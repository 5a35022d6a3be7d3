"""Exchange rows into PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.db_errors import describe, is_unavailable
from nexus.adapters.persistence.hourly_rollup import add_to_rollup
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.persistence.pg_values import pg_row
from nexus.adapters.persistence.rate_limits import upsert_snapshots
from nexus.adapters.persistence.tables import body_parts, exchanges
from nexus.application.ports.exchange_store import StoreRejected, StoreUnavailable
from nexus.application.recording.row import ExchangeRow

log = logging.getLogger(__name__)
_ROW_FIELDS = tuple(field for field in ExchangeRow.__struct_fields__ if field not in {"parts", "rate_limit"})
_MONTHS_AHEAD = 3
EXCHANGES_CHANNEL = "nexus_exchanges"
# Every stored batch is announced here, its ids as payload, for live views (``live_feed.py``).
RECORDED_CHANNEL = "nexus_recorded"
# A payload must stay under 8000 bytes: 200 ids of 36 characters and their commas take 7399.
_IDS_PER_NOTIFICATION = 200
_NOTIFY_EACH = text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload")


class SqlAlchemyExchangeStore:
    """Inserts batches idempotently (``ON CONFLICT DO NOTHING`` on the key and on part digests).

    Each account's newest unified rate-limit snapshot is upserted in the same transaction.
    The schema is brought up to date before the first write, so a database that was away when
    the proxy started is migrated when it comes back. Month partitions are created ahead as
    rows for new months arrive. Text PostgreSQL refuses is made storable first (``pg_values``);
    errors are told apart by ``db_errors``: unavailable, or rejected (something a row holds).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._ready = False
        self._months: set[date] = set()

    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        if not rows:
            return
        await self._ensure_schema()
        storable = [pg_row(row) for row in rows]
        try:
            async with self._engine.begin() as connection:
                months = await self._ensure_partitions(connection, storable)
                await self._insert(connection, storable)
        except Exception as exc:  # noqa: BLE001 -- every failure is one of the two the port knows
            if is_unavailable(exc):
                raise StoreUnavailable(describe(exc)) from None
            raise StoreRejected(describe(exc)) from None
        self._months |= months  # only once committed: a rolled back transaction created none

    async def _insert(self, connection: AsyncConnection, rows: Sequence[ExchangeRow]) -> None:
        parts = {part.digest: part for row in rows for part in row.parts}
        if parts:
            await connection.execute(
                insert(body_parts).on_conflict_do_nothing(),
                [{"digest": p.digest, "data": p.data, "size": p.size} for p in parts.values()],
            )
        created = await connection.execute(
            insert(exchanges).on_conflict_do_nothing().returning(exchanges.c.id),
            [{name: getattr(row, name) for name in _ROW_FIELDS} | {"is_subtask": False} for row in rows],
        )
        # Only rows this insert created count in the hourly totals: a replayed batch
        # (the journal after an outage) must not count twice.
        by_id = {row.id: row for row in rows}
        await add_to_rollup(connection, [by_id[row_id] for (row_id,) in created])
        await upsert_snapshots(connection, rows)
        # Delivered at commit, like the linker's wake-up below; one round trip for any size.
        await connection.execute(
            _NOTIFY_EACH, {"channel": RECORDED_CHANNEL, "payloads": recorded_payloads(row.id for row in rows)}
        )
        if any(row.link_pending for row in rows):
            # Delivered at commit to every listening process: the linker wakes at once.
            await connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": EXCHANGES_CHANNEL})

    async def _ensure_schema(self) -> None:
        """Migrate before the first write. Whatever stops a migration, no row is to blame."""
        if self._ready:
            return
        try:
            await upgrade(self._engine)
        except Exception as exc:  # noqa: BLE001 -- whatever it is, no row is to blame
            raise StoreUnavailable(f"the schema cannot be brought up to date ({describe(exc)})") from None
        self._ready = True

    async def _ensure_partitions(self, connection: AsyncConnection, rows: Sequence[ExchangeRow]) -> set[date]:
        months = {row.ts.date().replace(day=1) for row in rows} - self._months
        for month in sorted(months):
            await connection.execute(
                text("SELECT nexus_ensure_exchange_partitions(:month, :count)"),
                {"month": month, "count": _MONTHS_AHEAD},
            )
        return months


def recorded_payloads(ids: Iterable[uuid.UUID]) -> list[str]:
    """The payloads of ``nexus_recorded`` for these ids: comma-separated, each under 8000 bytes."""
    texts = [str(request_id) for request_id in ids]
    return [",".join(texts[i : i + _IDS_PER_NOTIFICATION]) for i in range(0, len(texts), _IDS_PER_NOTIFICATION)]
