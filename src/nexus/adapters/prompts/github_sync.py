"""Prompt files from a folder of a GitHub repository into ``MCP_PROMPTS_DIR``, over the REST API.

- Each round costs one call when nothing changed: the branch's head commit, sent with the
  previous ETag (GitHub does not count a 304 against the rate limit).
- A new commit: the folder's listing at that commit (contents API), then the raw bytes of each
  YAML file whose git blob hash differs from the local file's (blobs API), checked against
  that hash and written atomically once all of them arrived.
- ``.github-sync.json`` in the folder records the commit, the ETag, the blob of each file it
  wrote, and the status; every worker and the dashboard read it there, and a file lock keeps
  two workers from syncing at once.
- Local-only files stay. A file this sync wrote and the repository dropped is removed, unless
  it was edited here since (then it stays, listed as kept).
- Only the folder's own files, not its subfolders: the prompt directory is flat.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from filelock import AsyncFileLock, Timeout

from nexus.adapters.atomic_files import write_bytes_atomically
from nexus.adapters.prompts.directory import MAX_FILE_BYTES, SUFFIXES
from nexus.application.ports.prompts import SyncStatus
from nexus.application.ports.system import Clock

MANIFEST = ".github-sync.json"
LOCK = ".github-sync.lock"
FORCED_WAIT_S = 60.0
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}


@dataclass(frozen=True, kw_only=True)
class GitHubFolder:
    owner: str
    repo: str
    branch: str = "main"
    path: str = "prompts/"
    token: str | None = None
    api_url: str = "https://api.github.com"

    @property
    def source(self) -> str:
        return f"{self.owner}/{self.repo}@{self.branch}:{self.path.strip('/')}"


class SyncFailed(Exception):
    """Why a sync stopped; the message is ours (never the token, never GitHub's body)."""


class _Manifest(msgspec.Struct, kw_only=True):
    status: SyncStatus
    etag: str | None = None
    files: dict[str, str] = {}  # file -> the git blob it was written from


class GitHubPromptSync:
    def __init__(
        self, *, folder: GitHubFolder, directory: Path, client: httpx.AsyncClient, clock: Clock, min_gap_s: float
    ) -> None:
        self._folder = folder
        self._directory = directory
        self._client = client
        self._clock = clock
        self._min_gap_s = min_gap_s
        self._repo_url = f"{folder.api_url.rstrip('/')}/repos/{quote(folder.owner)}/{quote(folder.repo)}"

    async def status(self) -> SyncStatus:
        return (await asyncio.to_thread(self._load)).status

    async def sync(self, *, force: bool = False) -> SyncStatus:
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        lock = AsyncFileLock(self._directory / LOCK, timeout=FORCED_WAIT_S if force else 0, preserve_lock_file=True)
        try:
            async with lock:
                manifest = await asyncio.to_thread(self._load)
                if not force and self._checked_lately(manifest.status):
                    return manifest.status  # another worker's round
                manifest = await self._round(manifest)
                await asyncio.to_thread(self._save, manifest)
                return manifest.status
        except Timeout:
            return await self.status()  # another worker is syncing right now

    def _checked_lately(self, status: SyncStatus) -> bool:
        if status.last_attempt is None:
            return False
        return (self._now() - status.last_attempt).total_seconds() < self._min_gap_s

    async def _round(self, manifest: _Manifest) -> _Manifest:
        now = self._now()
        previous = manifest.status
        try:
            commit, etag = await self._head(manifest)
            if commit is None or commit == previous.commit:
                status = msgspec.structs.replace(
                    previous, state="unchanged", last_attempt=now, last_success=now, error=None
                )
                return _Manifest(status=status, etag=etag or manifest.etag, files=manifest.files)
            return await self._take(manifest, commit=commit, etag=etag, now=now)
        except SyncFailed as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"GitHub cannot be reached: {type(exc).__name__}"
        except OSError as exc:
            error = f"the prompts folder cannot be written: {exc.strerror or type(exc).__name__}"
        status = msgspec.structs.replace(previous, state="failed", last_attempt=now, error=error)
        return _Manifest(status=status, etag=manifest.etag, files=manifest.files)

    async def _head(self, manifest: _Manifest) -> tuple[str | None, str | None]:
        """The branch's head commit, or None when GitHub says it is the one we have (304)."""
        conditional = {"if-none-match": manifest.etag} if manifest.etag and manifest.status.commit else {}
        response = await self._get(f"/commits/{quote(self._folder.branch, safe='/')}", "branch", conditional)
        if response.status_code == 304:
            return None, None
        answer = _json(response)
        sha = answer.get("sha") if isinstance(answer, dict) else None
        if not isinstance(sha, str):
            raise SyncFailed("GitHub's answer for the branch names no commit")
        return sha, response.headers.get("etag")

    async def _take(self, manifest: _Manifest, *, commit: str, etag: str | None, now: datetime) -> _Manifest:
        wanted, skipped = await self._listing(commit)
        local = await asyncio.to_thread(self._local_blobs)
        fetched = {name: await self._blob(sha) for name, sha in wanted.items() if local.get(name) != sha}
        written, removed, kept = await asyncio.to_thread(self._apply, fetched, wanted, local, manifest.files)
        status = SyncStatus(
            source=self._folder.source,
            state="synced",
            last_attempt=now,
            last_success=now,
            commit=commit,
            written=written,
            removed=removed,
            kept=kept,
            skipped=skipped,
        )
        return _Manifest(status=status, etag=etag, files=wanted)

    async def _listing(self, commit: str) -> tuple[dict[str, str], dict[str, str]]:
        folder = quote(self._folder.path.strip("/"), safe="/")
        listing = _json(await self._get(f"/contents/{folder}", "folder", {}, params={"ref": commit}))
        if not isinstance(listing, list):
            raise SyncFailed("MCP_GITHUB_PATH names a file, not a folder")
        wanted: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for item in listing:
            name, sha, size = item.get("name"), item.get("sha"), item.get("size")
            if item.get("type") != "file" or not isinstance(name, str) or not name.endswith(SUFFIXES):
                continue
            if not _PLAIN_NAME.match(name) or not isinstance(sha, str):
                skipped[str(name)[:200]] = "not a plain file name"
            elif isinstance(size, int) and size > MAX_FILE_BYTES:
                skipped[name] = f"larger than {MAX_FILE_BYTES // 1024} KiB"
            else:
                wanted[name] = sha
        return wanted, skipped

    async def _blob(self, sha: str) -> bytes:
        response = await self._get(f"/git/blobs/{quote(sha)}", "file", {"accept": "application/vnd.github.raw+json"})
        if git_blob_sha(response.content) != sha:
            raise SyncFailed(f"GitHub sent a file that does not match its hash {sha[:12]}")
        return response.content

    async def _get(
        self, path: str, what: str, headers: dict[str, str], params: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {**_HEADERS, **headers}
        if self._folder.token:
            sent["authorization"] = f"Bearer {self._folder.token}"
        response = await self._client.get(f"{self._repo_url}{path}", headers=sent, params=params)
        if response.status_code in (200, 304):
            return response
        raise SyncFailed(_refusal(response, what, self._folder))

    def _local_blobs(self) -> dict[str, str]:
        try:
            paths = [path for path in self._directory.iterdir() if path.suffix in SUFFIXES and path.is_file()]
        except FileNotFoundError:
            return {}
        return {path.name: git_blob_sha(path.read_bytes()) for path in paths if not path.name.startswith(".")}

    def _apply(
        self, fetched: dict[str, bytes], wanted: dict[str, str], local: dict[str, str], synced: dict[str, str]
    ) -> tuple[list[str], list[str], list[str]]:
        for name, data in fetched.items():
            write_bytes_atomically(self._directory / name, data, new_file_mode=0o644)
        removed = []
        for name, blob in synced.items():
            if name not in wanted and local.get(name) == blob:
                (self._directory / name).unlink(missing_ok=True)
                removed.append(name)
        kept = [name for name in local if name not in wanted and name not in removed]
        return sorted(fetched), sorted(removed), sorted(kept)

    def _load(self) -> _Manifest:
        try:
            return msgspec.json.decode((self._directory / MANIFEST).read_bytes(), type=_Manifest)
        except (FileNotFoundError, msgspec.DecodeError):
            return _Manifest(status=SyncStatus(source=self._folder.source))

    def _save(self, manifest: _Manifest) -> None:
        write_bytes_atomically(self._directory / MANIFEST, msgspec.json.encode(manifest), new_file_mode=0o644)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_ms() / 1000, UTC)


def git_blob_sha(data: bytes) -> str:
    """The hash git (and GitHub's API) names a file's content by."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SyncFailed("GitHub's answer is not JSON") from None


def _refusal(response: httpx.Response, what: str, folder: GitHubFolder) -> str:
    status = response.status_code
    if status == 401:
        return "GitHub refused the token (401): check MCP_GITHUB_TOKEN"
    if status in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset", "")
        when = datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M UTC") if reset.isdigit() else "later"
        return f"GitHub's rate limit is used up until {when}" + ("" if folder.token else ": set MCP_GITHUB_TOKEN")
    if status in (403, 404):
        return (
            f"GitHub has no such {what} for {folder.source} ({status}): check MCP_GITHUB_OWNER, _REPO, _BRANCH and"
            " _PATH, and that the token can read the repository"
        )
    return f"GitHub answered {status} for the {what}"
