"""Credential files: ``<dir>/<name>.credentials.json``, one per domain."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from filelock import AsyncFileLock

from nexus.adapters.atomic_files import write_json_atomically
from nexus.application.ports import CredentialEntry, StoredCredential
from nexus.application.ports.health import ProbeResult
from nexus.domain.credentials import (
    CredentialFile,
    CredentialFileInvalid,
    OAuthTokens,
    merge_oauth,
    parse_credential_file,
)

log = logging.getLogger(__name__)

SUFFIX = ".credentials.json"
LOCK_TIMEOUT_S = 30.0
# File system timestamps come from a coarse clock: a listing taken within this margin of the
# directory's last change could miss a file created in the same tick, so it is not trusted.
_LISTING_MARGIN_NS = 2_000_000_000


def _refuse_outside(name: str) -> None:
    if name in {"", ".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise CredentialFileInvalid(f"refusing credential name {name!r}")


class FileCredentialStore:
    """Credential files in one directory, re-read whenever they change on disk.

    Names come from validated Host headers, and each path is still checked to sit directly in
    the directory, so no header can reach a file outside it. Writes go to a temporary file that
    replaces the original in one ``rename``, so readers never see half a file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory).absolute()
        # path -> (stat signature, parsed file or the reason it is unusable)
        self._cache: dict[str, tuple[tuple[int, int, int], CredentialFile | CredentialFileInvalid]] = {}
        self._listing: tuple[int, frozenset[str]] | None = None  # (directory mtime, file names)

    @property
    def directory(self) -> Path:
        return self._directory

    def path_for(self, name: str) -> Path:
        _refuse_outside(name)
        path = self._directory / f"{name}{SUFFIX}"
        if path.parent != self._directory:
            raise CredentialFileInvalid(f"refusing credential name {name!r}")
        return path

    async def find(self, names: Sequence[str]) -> StoredCredential | None:
        present = self._present_files()
        for name in names:
            _refuse_outside(name)
            # Refused above, no name reaches past the directory: the listing is asked first,
            # which spares building a path per name on every request.
            if f"{name}{SUFFIX}" not in present:
                continue
            path = self.path_for(name)
            credential = self._cached(path)
            if credential is not None:
                return StoredCredential(location=str(path), name=name, credential=credential)
        return None

    def _present_files(self) -> frozenset[str]:
        """The directory's file names, re-listed whenever the directory changes, so a lookup
        for a domain without a file costs one ``stat`` of the directory."""
        try:
            mtime = os.stat(self._directory).st_mtime_ns
        except OSError:
            return frozenset()
        listing = self._listing
        if listing is not None and listing[0] == mtime:
            return listing[1]
        names = frozenset(os.listdir(self._directory))
        if time.time_ns() - mtime > _LISTING_MARGIN_NS:
            self._listing = (mtime, names)
        return names

    def _cached(self, path: Path) -> CredentialFile | None:
        key = str(path)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._cache.pop(key, None)
            return None
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        hit = self._cache.get(key)
        if hit is None or hit[0] != signature:
            hit = (signature, self._parse(path))
            self._cache[key] = hit
        if isinstance(hit[1], CredentialFileInvalid):
            raise hit[1]
        return hit[1]

    @staticmethod
    def _parse(path: Path) -> CredentialFile | CredentialFileInvalid:
        try:
            return parse_credential_file(path.read_bytes())
        except CredentialFileInvalid as exc:
            return CredentialFileInvalid(f"{path.name}: {exc}")
        except OSError as exc:
            return CredentialFileInvalid(f"{path.name}: cannot be read ({exc.strerror})")

    @asynccontextmanager
    async def exclusive(self, location: str) -> AsyncIterator[None]:
        path = Path(location)
        lock = AsyncFileLock(path.with_name(f".{path.name}.lock"), timeout=LOCK_TIMEOUT_S, preserve_lock_file=True)
        async with lock:
            yield

    async def reload(self, location: str) -> StoredCredential:
        path = Path(location)
        self._cache.pop(location, None)
        credential = self._cached(path)
        if credential is None:
            raise CredentialFileInvalid(f"{path.name} has disappeared")
        return StoredCredential(location=location, name=path.name.removesuffix(SUFFIX), credential=credential)

    async def save_oauth(self, location: str, tokens: OAuthTokens) -> StoredCredential:
        # fsync can take milliseconds: keep it off the event loop.
        await asyncio.to_thread(_merge_tokens_into_file, Path(location), tokens)
        return await self.reload(location)

    async def update_document(
        self, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> StoredCredential:
        """Rewrite a record (or create it) under the lock; ``change`` gets None when absent.

        The result must be a valid credential: nothing unusable is ever written.
        """
        path = self.path_for(name)
        async with self.exclusive(str(path)):
            try:
                current: dict[str, Any] | None = json.loads(path.read_bytes())
            except FileNotFoundError:
                current = None
            document = change(current)
            parse_credential_file(json.dumps(document).encode())
            await asyncio.to_thread(write_json_atomically, path, document)
        return await self.reload(str(path))

    @property
    def probe_name(self) -> str:
        return "credentials"

    async def probe(self) -> ProbeResult:
        """Healthy when the directory can be read (or does not exist: then only client keys
        and ``CLAUDE_API_KEY`` are used); names the files that cannot be used."""
        detail: dict[str, object] = {"directory": str(self._directory)}
        if not self._directory.exists():
            return ProbeResult(healthy=True, detail={**detail, "files": 0, "note": "directory does not exist"})
        try:
            entries = await self.list_all()
        except OSError as exc:
            return ProbeResult(healthy=False, detail={**detail, "error": exc.strerror or str(exc)})
        invalid = [entry.name for entry in entries if entry.credential is None]
        return ProbeResult(healthy=True, detail={**detail, "files": len(entries), "invalid": invalid})

    async def list_all(self) -> list[CredentialEntry]:
        entries = []
        for path in sorted(self._directory.glob(f"*{SUFFIX}")):
            name = path.name.removesuffix(SUFFIX)
            parsed = self._parse(path)
            if isinstance(parsed, CredentialFileInvalid):
                entries.append(CredentialEntry(name=name, credential=None, problem=str(parsed)))
            else:
                entries.append(CredentialEntry(name=name, credential=parsed))
        return entries


def _merge_tokens_into_file(path: Path, tokens: OAuthTokens) -> None:
    write_json_atomically(path, merge_oauth(json.loads(path.read_bytes()), tokens))
