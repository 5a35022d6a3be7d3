"""In-memory stand-ins for the ports, for use-case tests."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.ports import CredentialEntry, StoredCredential, TokenRefreshFailed
from nexus.application.ports.exchange_store import Quarantined, StoreRejected, StoreUnavailable
from nexus.application.recording.row import ExchangeRow
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


class FlakyStore:
    """Rows by id. ``down`` makes it unavailable; a row whose id is in ``refused`` makes every
    batch holding it rejected, as one bad row rolls back a PostgreSQL transaction."""

    def __init__(self) -> None:
        self.rows: dict[str, ExchangeRow] = {}
        self.down = False
        self.refused: set[str] = set()
        self.batches: list[int] = []
        self.calls = 0

    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("connection refused")
        if refused := [str(row.id) for row in rows if str(row.id) in self.refused]:
            raise StoreRejected(f"invalid byte sequence in row {refused[0]}")
        self.batches.append(len(rows))
        for row in rows:
            self.rows.setdefault(str(row.id), row)


class MemoryJournal:
    def __init__(self) -> None:
        self.closed: list[list[Exchange]] = []
        self.open: list[Exchange] = []
        self.closes = 0

    def append(self, exchanges: Sequence[Exchange]) -> None:
        self.open.extend(exchanges)

    def segments(self) -> list[str]:
        if self.open:
            self.closed.append(self.open)
            self.open = []
        return [str(index) for index, segment in enumerate(self.closed) if segment]

    def read(self, segment: str) -> Iterator[Exchange]:
        return iter(list(self.closed[int(segment)]))

    def remove(self, segment: str) -> None:
        self.closed[int(segment)] = []

    def close(self) -> None:
        self.closes += 1

    @property
    def waiting(self) -> int:
        return len(self.open) + sum(len(segment) for segment in self.closed)


class MemoryQuarantine:
    """Quarantined exchanges by request id, in the order they came; ``broken`` fails every put."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[Exchange, str]] = {}
        self.puts = 0
        self.broken = False

    def put(self, exchange: Exchange, reason: str) -> None:
        self.puts += 1
        if self.broken:
            raise OSError("No space left on device")
        self.kept[exchange.request_id] = (exchange, reason)

    def count(self) -> int:
        return len(self.kept)

    def latest(self, limit: int) -> list[Quarantined]:
        newest = list(self.kept.items())[::-1][:limit]
        return [Quarantined(request_id=key, reason=reason, at=datetime.now(UTC)) for key, (_, reason) in newest]

    def entries(self) -> Iterator[tuple[str, Exchange]]:
        return iter([(key, exchange) for key, (exchange, _) in self.kept.items()])

    def release(self, name: str) -> None:
        self.kept.pop(name, None)
