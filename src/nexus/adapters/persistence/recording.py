"""The recorder's lifetime inside the app: schema check, background task, flush on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.db_errors import describe
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.persistence.partitions import maintain_partitions
from nexus.application.ports.exchange_store import Recording

log = logging.getLogger(__name__)
MAINTENANCE_INTERVAL_S = 6 * 3600


async def recording_lifetime(
    *, engine: AsyncEngine | None, recorder: Recording | None, retention_days: int | None = None
) -> AsyncIterator[Recording | None]:
    """The recorder running while the app runs (None when storage is off).

    The schema is migrated at start-up when the database answers; if it does not, the proxy
    starts anyway and the recorder journals until it does.
    """
    if engine is None or recorder is None:
        yield None
        return
    try:
        await upgrade(engine)
    except Exception as exc:  # noqa: BLE001 -- any failure here must not stop the proxy
        log.warning("Database not ready at start-up (%s); exchanges are journaled until it is", describe(exc))
    await recorder.start()
    maintenance = asyncio.create_task(_maintain_partitions(engine, retention_days), name="partition-maintenance")
    try:
        yield recorder
    finally:
        maintenance.cancel()
        await recorder.stop()
        log.info(
            "Recorder stopped: %d exchanges stored, %d journaled, %d quarantined",
            recorder.stored,
            recorder.journaled,
            recorder.quarantined,
        )


async def _maintain_partitions(engine: AsyncEngine, retention_days: int | None) -> None:
    """Partitions ahead and retention, at start and every few hours (a failure is retried later)."""
    while True:
        try:
            await maintain_partitions(engine, now=datetime.now(UTC), retention_days=retention_days)
        except Exception as exc:  # noqa: BLE001 -- maintenance must never stop the proxy
            log.warning("Partition maintenance failed (%s); retrying later", describe(exc))
        await asyncio.sleep(MAINTENANCE_INTERVAL_S)
