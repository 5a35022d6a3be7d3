"""Month partitions of ``exchanges``: created ahead, and dropped whole past the retention."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.conversation_summaries import refresh_conversations
from nexus.adapters.persistence.hourly_rollup import drop_rollup_before

log = logging.getLogger(__name__)
MONTHS_AHEAD = 3
_PARTITION = re.compile(r"exchanges_(\d{4})_(\d{2})")


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


async def maintain_partitions(engine: AsyncEngine, *, now: datetime, retention_days: int | None) -> list[str]:
    """Create this month's and the next ``MONTHS_AHEAD`` partitions; with a retention, drop
    the partitions whose whole month ended before ``now - retention_days``. Returns the names
    of the partitions dropped."""
    dropped: list[str] = []
    async with engine.begin() as connection:
        await connection.execute(
            text("SELECT nexus_ensure_exchange_partitions(:month, :count)"),
            {"month": _month_start(now.date()), "count": MONTHS_AHEAD + 1},
        )
        if retention_days is None:
            return dropped
        cutoff = (now - timedelta(days=retention_days)).date()
        rows = await connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'exchanges'"
            )
        )
        for (name,) in rows.all():
            match = _PARTITION.fullmatch(name)
            if match and _next_month(date(int(match[1]), int(match[2]), 1)) <= cutoff:
                await connection.execute(text(f'DROP TABLE "{name}"'))
                dropped.append(name)
        if dropped:
            # Conversations that had requests in the dropped months: summarise what is left
            # (a conversation left with none disappears).
            boundary = max(_next_month(date(int(m[1]), int(m[2]), 1)) for m in map(_PARTITION.fullmatch, dropped) if m)
            stale = await connection.execute(
                text("SELECT conversation_id FROM conversations WHERE first_at < :boundary"), {"boundary": boundary}
            )
            await refresh_conversations(connection, [conversation for (conversation,) in stale.all()])
            # The hourly rollup forgets the same months.
            await drop_rollup_before(connection, datetime(boundary.year, boundary.month, boundary.day, tzinfo=UTC))
    if dropped:
        log.info("Dropped exchange partitions past the %d-day retention: %s", retention_days, ", ".join(dropped))
    return sorted(dropped)
