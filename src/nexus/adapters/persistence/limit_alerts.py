"""The alert claims in ``limit_alerts`` and the culprits read from ``exchanges``.

A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE sent_at <= now - quiet RETURNING
key``: PostgreSQL returns a key only to the statement that inserted or renewed it, and a
second worker claiming the same key at the same moment waits on the row lock, then finds it
fresh and gets nothing back. So an alert is sent once, whichever worker saw the traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Text, and_, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import exchanges, limit_alerts
from nexus.application.ports.limit_alerts import SentAlert
from nexus.domain.limit_alerts import Culprit, LimitAlert

_RECENT_LIMIT = 50

_TOKENS = (
    func.coalesce(exchanges.c.input_tokens, 0)
    + func.coalesce(exchanges.c.output_tokens, 0)
    + func.coalesce(exchanges.c.cache_creation_input_tokens, 0)
    + func.coalesce(exchanges.c.cache_read_input_tokens, 0)
)


class SqlAlchemyAlertLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self, alert: LimitAlert, keys: Mapping[str, int | None], *, quiet_s: float, now: datetime
    ) -> list[str]:
        if not keys:
            return []
        records = [
            {
                "key": key,
                "measure": alert.measure,
                "account_id": alert.account_id,
                "domain": alert.domain,
                "threshold": threshold,
                "headline": alert.headline,
                "sent_at": now,
            }
            for key, threshold in keys.items()
        ]
        upsert = insert(limit_alerts).values(records)
        excluded = upsert.excluded
        statement = upsert.on_conflict_do_update(
            index_elements=[limit_alerts.c.key],
            set_={"sent_at": excluded.sent_at, "headline": excluded.headline, "domain": excluded.domain},
            where=limit_alerts.c.sent_at <= excluded.sent_at - timedelta(seconds=quiet_s),
        ).returning(limit_alerts.c.key)

        async def work(connection: AsyncConnection) -> list[str]:
            claimed = [row.key for row in await connection.execute(statement)]
            await connection.commit()
            return claimed

        return await run_read(self._engine, work)

    async def culprits(self, account_id: str, since: datetime, until: datetime, limit: int) -> list[Culprit]:
        # Not yet linked exchanges (the linker runs a moment behind) are grouped by session.
        group = func.coalesce(cast(exchanges.c.conversation_id, Text), exchanges.c.session_id)
        tokens = func.sum(_TOKENS).label("tokens")
        statement = (
            select(
                group.label("id"),
                exchanges.c.is_subtask,
                func.bool_or(exchanges.c.conversation_id.is_not(None)).label("linked"),
                func.max(exchanges.c.title).label("title"),
                func.count().label("requests"),
                tokens,
            )
            .where(
                and_(exchanges.c.account_id == account_id, exchanges.c.ts >= since, exchanges.c.ts < until),
                group.is_not(None),
            )
            .group_by(group, exchanges.c.is_subtask)
            .order_by(tokens.desc(), group)
            .limit(limit)
        )

        async def work(connection: AsyncConnection) -> list[Culprit]:
            rows = (await connection.execute(statement)).all()
            return [
                Culprit(
                    kind="sub-agent" if row.is_subtask else "conversation" if row.linked else "session",
                    id=row.id,
                    title=row.title,
                    requests=row.requests,
                    tokens=int(row.tokens or 0),
                )
                for row in rows
            ]

        return await run_read(self._engine, work)

    async def recent(self, since: datetime, *, domain: str | None = None) -> list[SentAlert]:
        statement = select(limit_alerts).where(limit_alerts.c.sent_at >= since)
        if domain is not None:
            statement = statement.where(limit_alerts.c.domain == domain)
        statement = statement.order_by(limit_alerts.c.sent_at.desc(), limit_alerts.c.key).limit(_RECENT_LIMIT)

        async def work(connection: AsyncConnection) -> list[SentAlert]:
            rows = (await connection.execute(statement)).mappings().all()
            return [SentAlert(**{name: row[name] for name in SentAlert.__struct_fields__}) for row in rows]

        return await run_read(self._engine, work)
