"""Schema migrations with alembic, one process at a time."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# Any fixed 64-bit number; every process migrating this database takes the same lock.
MIGRATION_LOCK_KEY = 0x6E65787573_0001


def migrations_dir() -> Path:
    """``migrations/`` at the project root (editable install) or shipped in the wheel."""
    package = Path(__file__).resolve().parents[2]  # src/nexus
    for candidate in (package / "_migrations", package.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("alembic migrations not found next to the nexus package")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` under a transaction-scoped advisory lock, so several
    processes starting together never migrate at once (the others wait, then find nothing to do)."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    log.info("Database schema is at %s", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
