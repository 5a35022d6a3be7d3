"""The prompts as the management API and the dashboard see them: every file (valid or not),
searched, and the repository sync behind them, run on an interval and on demand."""

from __future__ import annotations

import asyncio
import logging

from nexus.application.ports.prompts import PromptEntry, PromptLibrary, PromptSync, SyncStatus

log = logging.getLogger(__name__)


class PromptCatalog:
    def __init__(self, *, library: PromptLibrary, sync: PromptSync | None, mcp_enabled: bool) -> None:
        self.library = library
        self.mcp_enabled = mcp_enabled
        self._sync = sync

    @property
    def syncs(self) -> bool:
        return self._sync is not None

    async def entries(self, search: str | None = None) -> list[PromptEntry]:
        await self.library.refresh()
        entries = self.library.entries()
        if not search:
            return entries
        needle = search.casefold()
        return [entry for entry in entries if needle in _searchable(entry)]

    async def entry(self, name: str) -> PromptEntry | None:
        """The prompt of that name, or the invalid file of that base name."""
        await self.library.refresh()
        return next((entry for entry in self.library.entries() if entry.name == name), None)

    async def sync_now(self) -> SyncStatus | None:
        if self._sync is None:
            return None
        status = await self._sync.sync(force=True)
        await self.library.refresh()
        return status

    async def sync_status(self) -> SyncStatus | None:
        return await self._sync.status() if self._sync is not None else None

    async def keep_synced(self, interval_s: float) -> None:
        """One round at start, then every ``interval_s``; with several workers the first to
        look does the round and the others find it done (the sync's own lock and gap)."""
        if self._sync is None:
            return
        while True:
            try:
                status = await self._sync.sync()
            except OSError as exc:  # the folder's manifest or lock cannot be written
                log.warning("Prompt sync cannot record its state: %s", exc)
            else:
                if status.state == "failed":
                    log.warning("Prompt sync from %s failed: %s", status.source, status.error)
            await asyncio.sleep(interval_s)


def _searchable(entry: PromptEntry) -> str:
    parts = [entry.name, entry.file]
    if entry.prompt is not None and entry.prompt.description:
        parts.append(entry.prompt.description)
    return " ".join(parts).casefold()
