"""The schema's alembic revisions on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.migrate import alembic_config, downgrade, upgrade

pytestmark = pytest.mark.integration


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


async def tables(url: str) -> set[str]:
    async with open_engine(url) as engine, engine.connect() as connection:
        rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {row[0] for row in rows}


async def test_every_revision_goes_up_down_and_up_again(database_url: str) -> None:
    async with open_engine(database_url) as engine:
        for revision in revisions():
            await upgrade(engine, revision)
        await downgrade(engine, "base")
        assert await tables(database_url) == {"alembic_version"}
        await upgrade(engine, "head")
    created = await tables(database_url)
    assert {"exchanges", "body_parts"} <= created
    month = datetime.now(UTC).strftime("%Y_%m")
    assert f"exchanges_{month}" in created, "this month's partition exists"


async def test_concurrent_migrations_wait_for_each_other(database_url: str) -> None:
    async with open_engine(database_url) as first, open_engine(database_url) as second:
        await asyncio.gather(upgrade(first, "head"), upgrade(second, "head"))
        async with first.connect() as connection:
            version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == revisions()[-1]
