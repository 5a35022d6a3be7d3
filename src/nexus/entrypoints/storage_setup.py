"""Where the database is: ``DATABASE_URL``, or the embedded server started here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.embedded import start_embedded_postgres
from nexus.adapters.persistence.migrate import upgrade
from nexus.entrypoints.settings import Settings


def resolve_storage(settings: Settings) -> Settings:
    """Settings with a database URL: the configured one, or the embedded server's, started (or
    joined) now. Unchanged when storage is off."""
    if not settings.storage_enabled or settings.database_url:
        return settings
    if settings.nexus_role == "dashboard" and settings.dashboard_database_url:
        return settings  # the dashboard alone reads the database it was given, and starts none
    url = start_embedded_postgres(Path(settings.nexus_data_dir))
    return msgspec.structs.replace(settings, database_url=url)


def migrate_now(settings: Settings) -> None:
    """``claude-nexus-proxy migrate``: bring the schema to the latest revision."""
    assert settings.database_url is not None

    async def run() -> None:
        async with open_engine(settings.database_url or "") as engine:
            await upgrade(engine)

    asyncio.run(run())
