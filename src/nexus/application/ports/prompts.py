"""Where the MCP prompt server's prompts come from."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import msgspec

from nexus.domain.prompts import Prompt


class PromptEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One prompt file: the prompt, or why it cannot be served."""

    file: str
    name: str
    prompt: Prompt | None = None
    problem: str | None = None


@runtime_checkable
class PromptLibrary(Protocol):
    @property
    def version(self) -> int:
        """Grows by one each time a refresh finds the files changed."""
        ...

    def entries(self) -> list[PromptEntry]:
        """Every prompt file, valid or not, by name."""
        ...

    def get(self, name: str) -> Prompt | None: ...

    async def refresh(self) -> bool:
        """Read the files again if any was added, changed or removed; True when one was."""
        ...


class SyncStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The last sync from a repository, as every worker and the dashboard read it."""

    source: str  # owner/repo@branch:path, never the token
    state: Literal["never", "synced", "unchanged", "failed"] = "never"
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    commit: str | None = None
    written: list[str] = []
    removed: list[str] = []
    kept: list[str] = []  # local-only files, or ones edited here since the last sync
    skipped: dict[str, str] = {}  # file -> why it was not taken
    error: str | None = None


@runtime_checkable
class PromptSync(Protocol):
    async def sync(self, *, force: bool = False) -> SyncStatus:
        """Fetch the repository's prompt files if its head commit changed (``force``: even if
        another worker checked a moment ago)."""
        ...

    async def status(self) -> SyncStatus: ...


class PromptUse(msgspec.Struct, frozen=True, kw_only=True):
    """A prompt rendered over MCP, found again by its text's hash."""

    text_hash: str
    name: str
    first_at: datetime
    last_at: datetime
    count: int = 1


@runtime_checkable
class PromptUses(Protocol):
    """Raise ``QueriesUnavailable`` when the database cannot be reached."""

    async def record(self, text_hash: str, name: str, *, now: datetime) -> None: ...

    async def find(self, text_hashes: list[str]) -> PromptUse | None:
        """The prompt one of these hashes was rendered from (the most recent, if several)."""
        ...
