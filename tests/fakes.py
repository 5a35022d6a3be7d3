"""In-memory stand-ins for the ports, for use-case tests."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from nexus.application.ports import CredentialEntry, StoredCredential, TokenRefreshFailed
from nexus.domain.credentials import (
    CredentialFileInvalid,
    OAuthTokens,
    RefreshedTokens,
    merge_oauth,
    parse_credential_file,
)


class FixedClock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now = now_ms
        self.mono = 1000.0

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)
        self.mono += seconds


class InMemoryCredentialStore:
    """Documents by name; ``documents`` may be edited by a test to play "another process"."""

    def __init__(self, documents: dict[str, dict[str, Any]] | None = None) -> None:
        self.documents = documents or {}
        self.saved: list[OAuthTokens] = []
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def _stored(self, name: str) -> StoredCredential:
        credential = parse_credential_file(json.dumps(self.documents[name]).encode())
        return StoredCredential(location=name, name=name, credential=credential)

    async def find(self, names: Sequence[str]) -> StoredCredential | None:
        for name in names:
            if name in self.documents:
                return self._stored(name)
        return None

    @asynccontextmanager
    async def exclusive(self, location: str) -> AsyncIterator[None]:
        async with self._locks[location]:
            yield

    async def reload(self, location: str) -> StoredCredential:
        if location not in self.documents:
            raise CredentialFileInvalid(f"{location} has disappeared")
        return self._stored(location)

    async def save_oauth(self, location: str, tokens: OAuthTokens) -> StoredCredential:
        self.documents[location] = merge_oauth(self.documents[location], tokens)
        self.saved.append(tokens)
        return self._stored(location)

    async def list_all(self) -> list[CredentialEntry]:
        return [CredentialEntry(name=name, credential=self._stored(name).credential) for name in sorted(self.documents)]


class FakeRefresher:
    """Issues numbered tokens; can be told to fail or to take its time."""

    def __init__(self, *, expires_in: int = 3600, delay_s: float = 0.0) -> None:
        self.calls: list[str] = []
        self.expires_in = expires_in
        self.delay_s = delay_s
        self.fail_with: str | None = None

    async def refresh(self, refresh_token: str) -> RefreshedTokens:
        self.calls.append(refresh_token)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_with:
            raise TokenRefreshFailed(self.fail_with)
        n = len(self.calls)
        return RefreshedTokens(
            access_token=f"sk-ant-oat01-new{n}", expires_in=self.expires_in, refresh_token=f"sk-ant-ort01-new{n}"
        )
