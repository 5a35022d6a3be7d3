"""Where the MCP prompt server's prompts come from."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
    def entries(self) -> list[PromptEntry]:
        """Every prompt file, valid or not, by name."""
        ...

    def get(self, name: str) -> Prompt | None: ...

    async def refresh(self) -> bool:
        """Read the files again if any was added, changed or removed; True when one was."""
        ...
