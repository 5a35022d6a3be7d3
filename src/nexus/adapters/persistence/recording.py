"""The recorder's lifetime inside the app: schema check, background task, flush on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.recording.recorder import ExchangeRecorder

log = logging.getLogger(__name__)


async def recorder_lifetime(
    *, engine: AsyncEngine | None, data_dir: str, store_bodies: bool, queue_size: int, batch_size: int
) -> AsyncIterator[ExchangeRecorder | None]:
    """A running recorder while the app runs (None when storage is off).

    The schema is migrated at start-up when the database answers; if it does not, the proxy
    starts anyway and the recorder journals until it does.
    """
    if engine is None:
        yield None
        return
    try:
        await upgrade(engine)
    except (OSError, Exception) as exc:  # noqa: BLE001 -- any failure here must not stop the proxy
        log.warning("Database not ready at start-up (%s); exchanges are journaled until it is", exc)
    recorder = ExchangeRecorder(
        store=SqlAlchemyExchangeStore(engine),
        journal=FileJournal(Path(data_dir) / "journal"),
        store_bodies=store_bodies,
        queue_size=queue_size,
        batch_size=batch_size,
    )
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.stop()
        log.info("Recorder stopped: %d exchanges stored, %d journaled", recorder.stored, recorder.journaled)
