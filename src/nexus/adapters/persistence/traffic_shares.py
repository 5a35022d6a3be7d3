"""Workers' traffic-limit counts in ``traffic_shares``: one row per (worker, scope), upserted
each round, the others' summed in the same round trip. Times are the database's, so workers
on several machines agree on what is fresh."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import traffic_shares
from nexus.application.ports.traffic_shares import ScopeShare

_t = traffic_shares.c
KEEP = timedelta(days=2)
_SWEEP_EVERY = 600  # rounds between deletions of long-gone workers' rows


class SqlAlchemyTrafficShares:
    def __init__(self, engine: AsyncEngine | None, *, fresh_s: float) -> None:
        self._engine = engine
        self._fresh = timedelta(seconds=fresh_s)
        self._rounds = 0

    async def exchange(self, worker: str, own: list[ScopeShare], *, day: int) -> dict[str, ScopeShare]:
        self._rounds += 1
        sweep = self._rounds % _SWEEP_EVERY == 1
        fresh = _t.updated_at > func.now() - self._fresh
        others = (
            select(
                _t.scope,
                func.coalesce(func.sum(_t.requests).filter(fresh), 0),
                func.coalesce(func.sum(_t.tokens).filter(fresh), 0),
                func.coalesce(func.sum(_t.streams).filter(fresh), 0),
                func.coalesce(func.sum(_t.cost).filter(_t.day == day), 0),
            )
            .where(_t.worker != worker)
            .group_by(_t.scope)
        )

        async def work(connection: AsyncConnection) -> dict[str, ScopeShare]:
            if own:
                upsert = insert(traffic_shares).values(
                    [
                        {
                            "worker": worker,
                            "scope": share.scope,
                            "requests": share.requests,
                            "tokens": share.tokens,
                            "streams": share.streams,
                            "day": day,
                            "cost": share.cost,
                            "updated_at": func.now(),
                        }
                        for share in own
                    ]
                )
                excluded = upsert.excluded
                await connection.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[_t.worker, _t.scope],
                        set_={
                            "requests": excluded.requests,
                            "tokens": excluded.tokens,
                            "streams": excluded.streams,
                            "day": excluded.day,
                            "cost": excluded.cost,
                            "updated_at": excluded.updated_at,
                        },
                    )
                )
            if sweep:
                await connection.execute(traffic_shares.delete().where(_t.updated_at < func.now() - KEEP))
            rows = (await connection.execute(others)).all()
            await connection.commit()
            return {
                row[0]: ScopeShare(
                    scope=row[0], requests=int(row[1]), tokens=int(row[2]), streams=int(row[3]), cost=Decimal(row[4])
                )
                for row in rows
            }

        return await run_read(self._engine, work)
