"""The database as a health probe, with the recorder's backlog."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.application.ports.health import ProbeResult
from nexus.application.recording.recorder import ExchangeRecorder

PROBE_TIMEOUT_S = 2.0


class DatabaseProbe:
    """Healthy when PostgreSQL answers; storage off is reported as such, and healthy."""

    probe_name = "database"

    def __init__(self, *, engine: AsyncEngine | None, recorder: ExchangeRecorder | None) -> None:
        self._engine = engine
        self._recorder = recorder

    async def probe(self) -> ProbeResult:
        if self._engine is None:
            return ProbeResult(healthy=True, detail={"storage": "off"})
        detail: dict[str, object] = {}
        if self._recorder is not None:
            detail.update(stored=self._recorder.stored, journaled=self._recorder.journaled)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001 -- any failure means "not reachable"
            return ProbeResult(healthy=False, detail={**detail, "error": type(exc).__name__})
        return ProbeResult(healthy=True, detail=detail)
