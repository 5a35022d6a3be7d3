"""The database as a health probe, with the recorder's backlog and its quarantine."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.db_errors import describe
from nexus.adapters.recorder_process.process import RecorderProcess
from nexus.application.ports.exchange_store import ExchangeQuarantine, Recording
from nexus.application.ports.health import ProbeResult

PROBE_TIMEOUT_S = 2.0
_QUARANTINE_SHOWN = 5


class DatabaseProbe:
    """Healthy when PostgreSQL answers; storage off is reported as such, and healthy.

    Quarantined exchanges (rows the database refused) are shown with their request ids; they
    leave the probe healthy (the database works), but an operator must see them.
    """

    probe_name = "database"

    def __init__(
        self,
        *,
        engine: AsyncEngine | None,
        recorder: Recording | None,
        quarantine: ExchangeQuarantine | None = None,
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self._quarantine = quarantine

    async def probe(self) -> ProbeResult:
        if self._engine is None:
            return ProbeResult(healthy=True, detail={"storage": "off"})
        detail: dict[str, object] = {}
        if self._recorder is not None:
            detail.update(stored=self._recorder.stored, journaled=self._recorder.journaled)
        if isinstance(self._recorder, RecorderProcess):
            detail["recorder_process"] = self._recorder.detail()
        if self._quarantine is not None:
            detail["quarantined"] = await asyncio.to_thread(self._quarantine_detail, self._quarantine)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 -- any failure means "not reachable"
            return ProbeResult(healthy=False, detail={**detail, "error": describe(exc)})
        return ProbeResult(healthy=True, detail=detail)

    @staticmethod
    def _quarantine_detail(quarantine: ExchangeQuarantine) -> dict[str, object]:
        """Every worker's quarantine (they share the folder), the newest first."""
        count = quarantine.count()
        latest = quarantine.latest(_QUARANTINE_SHOWN) if count else []
        return {
            "count": count,
            "latest": [
                {"request_id": entry.request_id, "reason": entry.reason, "at": entry.at.isoformat()} for entry in latest
            ],
        }
