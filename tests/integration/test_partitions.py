"""Month partitions on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.persistence.partitions import maintain_partitions

pytestmark = pytest.mark.integration


async def partitions(engine: object) -> list[str]:
    async with engine.connect() as connection:  # type: ignore[attr-defined]
        rows = await connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'exchanges' ORDER BY 1"
            )
        )
        return [row[0] for row in rows]


async def test_partitions_are_created_ahead_and_dropped_past_the_retention(database_url: str) -> None:
    async with open_engine(database_url) as engine:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(text("SELECT nexus_ensure_exchange_partitions('2025-01-01', 3)"))
            await connection.execute(
                text(
                    "INSERT INTO exchanges (id, ts, method, path, status, state, duration_ms) VALUES "
                    "(gen_random_uuid(), '2025-01-15T00:00:00Z', 'POST', '/v1/messages', 200, 'complete', 1),"
                    "(gen_random_uuid(), '2025-03-31T23:59:59Z', 'POST', '/v1/messages', 200, 'complete', 1)"
                )
            )
        now = datetime(2025, 5, 10, tzinfo=UTC)
        dropped = await maintain_partitions(engine, now=now, retention_days=45)
        assert dropped == ["exchanges_2025_01", "exchanges_2025_02"], "only months wholly past the retention"
        names = await partitions(engine)
        assert {"exchanges_2025_03", "exchanges_2025_05", "exchanges_2025_08"} <= set(names)
        async with engine.connect() as connection:
            left = (await connection.execute(text("SELECT count(*) FROM exchanges"))).scalar_one()
        assert left == 1
        assert await maintain_partitions(engine, now=now, retention_days=None) == []
