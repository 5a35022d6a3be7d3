"""Rendered prompts in ``prompt_uses``: one row per distinct text, the hash only (the text
itself is in the conversation that used it, if any)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.tables import prompt_uses
from nexus.application.ports.prompts import PromptUse


class SqlAlchemyPromptUses:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, text_hash: str, name: str, *, now: datetime) -> None:
        upsert = insert(prompt_uses).values(text_hash=text_hash, prompt_name=name, first_at=now, last_at=now, count=1)
        statement = upsert.on_conflict_do_update(
            index_elements=[prompt_uses.c.text_hash],
            set_={"prompt_name": name, "last_at": now, "count": prompt_uses.c.count + 1},
        )

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(statement)
            await connection.commit()

        await run_read(self._engine, work)

    async def find(self, text_hashes: list[str]) -> PromptUse | None:
        if not text_hashes:
            return None
        c = prompt_uses.c
        statement = (
            select(c.text_hash, c.prompt_name, c.first_at, c.last_at, c.count)
            .where(c.text_hash.in_(text_hashes))
            .order_by(c.last_at.desc())
            .limit(1)
        )

        async def work(connection: AsyncConnection) -> PromptUse | None:
            row = (await connection.execute(statement)).first()
            if row is None:
                return None
            return PromptUse(
                text_hash=row.text_hash,
                name=row.prompt_name,
                first_at=row.first_at,
                last_at=row.last_at,
                count=row[4],  # `row.count` is the tuple method
            )

        return await run_read(self._engine, work)
