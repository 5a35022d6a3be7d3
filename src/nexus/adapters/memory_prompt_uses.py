"""Rendered prompts without storage: this process's last few thousand, gone at restart."""

from __future__ import annotations

from datetime import datetime

import msgspec

from nexus.application.ports.prompts import PromptUse

_KEPT = 5000


class MemoryPromptUses:
    def __init__(self) -> None:
        self._uses: dict[str, PromptUse] = {}

    async def record(self, text_hash: str, name: str, *, now: datetime) -> None:
        previous = self._uses.pop(text_hash, None)
        if previous is None:
            use = PromptUse(text_hash=text_hash, name=name, first_at=now, last_at=now)
        else:
            use = msgspec.structs.replace(previous, name=name, last_at=now, count=previous.count + 1)
        if len(self._uses) >= _KEPT:
            self._uses.pop(next(iter(self._uses)))
        self._uses[text_hash] = use

    async def find(self, text_hashes: list[str]) -> PromptUse | None:
        found = [self._uses[text_hash] for text_hash in text_hashes if text_hash in self._uses]
        return max(found, key=lambda use: use.last_at, default=None)
