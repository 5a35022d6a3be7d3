"""GitHub's REST API as the prompt sync uses it, on loopback: a branch's head commit (with ETag
and 304), a folder's listing at a commit, and blobs as raw bytes. Tests ``commit`` a new
snapshot of the repository's files, and can require a token, answer a rate limit, or corrupt a
blob."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from tests.support.loopback_app import LoopbackApp


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class FakeGitHub(LoopbackApp):
    def __init__(self, owner: str = "team", repo: str = "prompts", *, token: str | None = None) -> None:
        super().__init__()
        self.owner, self.repo, self.token = owner, repo, token
        self.branches: dict[str, str] = {}
        self._snapshots: dict[str, dict[str, bytes]] = {}  # commit -> path -> content
        self._blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)
        self.rate_limited = False
        self.corrupt_blobs = False

    def commit(self, files: dict[str, str | bytes], branch: str = "main") -> str:
        """A new commit whose tree is ``files`` (path -> content); the branch's head moves to it."""
        contents = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
        sha = hashlib.sha1(repr(sorted(contents.items())).encode() + branch.encode(), usedforsecurity=False)
        commit = sha.hexdigest()
        with self._lock:
            self._snapshots[commit] = contents
            self._blobs.update({blob_sha(data): data for data in contents.values()})
            self.branches[branch] = commit
        return commit

    def seen(self, fragment: str) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [request for request in self.requests if fragment in request[0]]

    def add_routes(self, app: web.Application) -> None:
        base = f"/repos/{self.owner}/{self.repo}"
        app.router.add_get(base + "/commits/{ref:.+}", self._commit)
        app.router.add_get(base + "/contents/{path:.*}", self._contents)
        app.router.add_get(base + "/git/blobs/{sha}", self._blob)

    def _refusal(self, request: web.Request) -> web.Response | None:
        with self._lock:
            self.requests.append((request.path_qs, {name.lower(): value for name, value in request.headers.items()}))
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        if self.rate_limited:
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1800000000"}
            return web.json_response({"message": "API rate limit exceeded"}, status=403, headers=headers)
        return None

    async def _commit(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        commit = self.branches.get(request.match_info["ref"])
        if commit is None:
            return web.json_response({"message": "No commit found for SHA"}, status=404)
        etag = f'"{commit}"'
        if request.headers.get("if-none-match") == etag:
            return web.Response(status=304, headers={"etag": etag})
        return web.json_response({"sha": commit, "commit": {"message": "prompts"}}, headers={"etag": etag})

    async def _contents(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        snapshot = self._snapshots.get(request.query.get("ref", ""), {})
        folder = request.match_info["path"].strip("/")
        if folder in snapshot:
            return web.json_response(_entry(folder, snapshot[folder]))
        prefix = f"{folder}/" if folder else ""
        listing: dict[str, dict[str, Any]] = {}
        for path, data in snapshot.items():
            if not path.startswith(prefix):
                continue
            name, _, rest = path[len(prefix) :].partition("/")
            listing[name] = {"name": name, "type": "dir", "path": prefix + name} if rest else _entry(path, data)
        if not listing:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(sorted(listing.values(), key=lambda item: item["name"]))

    async def _blob(self, request: web.Request) -> web.Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        data = self._blobs.get(request.match_info["sha"])
        if data is None:
            return web.json_response({"message": "Not Found"}, status=404)
        if request.headers.get("accept") != "application/vnd.github.raw+json":
            return web.json_response({"message": "this fake serves blobs raw only"}, status=415)
        return web.Response(body=data + b"tampered" if self.corrupt_blobs else data)


def _entry(path: str, data: bytes) -> dict[str, Any]:
    return {"name": path.rsplit("/", 1)[-1], "path": path, "type": "file", "size": len(data), "sha": blob_sha(data)}
