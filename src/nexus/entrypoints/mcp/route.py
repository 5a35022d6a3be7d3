"""``/mcp`` in the Litestar app: the SDK's streamable-HTTP session manager behind our own
authentication and host check, run for the app's lifespan.

- Auth: ``Authorization: Bearer`` with ``DASHBOARD_API_KEY``, or with the ``client_api_key``
  of the credential file of the request's host; anything else is 401 before the SDK sees it.
- Hosts: the SDK's DNS-rebinding check only knows fixed host lists, and the proxy serves every
  domain that has a credential file. So the check is here: the Host must be this machine, a
  domain with a credential file, or one of ``MCP_ALLOWED_HOSTS``; a browser's ``Origin``, when
  sent, must name an allowed host too (403 otherwise).
- The session manager's task group lives in the app's lifespan task (entered and left there,
  as anyio requires), so it is a lifespan context of the app, not a container resource. The
  folder watcher runs beside it and tells the sessions when the prompts change.
- With several workers the kernel hands each connection to any of them, and a session lives in
  one process's memory; so there the manager is stateless (every request stands alone) and
  nothing is pushed: clients see a change at their next ``prompts/list`` (ADR 13).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from litestar import Litestar, asgi
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from nexus.application.ports.credential_store import CredentialStore
from nexus.application.ports.prompts import PromptLibrary, PromptUses
from nexus.application.ports.system import Clock
from nexus.application.prompt_catalog import PromptCatalog
from nexus.domain.credentials import CredentialFile, CredentialFileInvalid, secrets_match
from nexus.domain.errors import InvalidRequest
from nexus.domain.headers import header_value
from nexus.domain.host import parse_host
from nexus.entrypoints.http.container_plugin import resolve
from nexus.entrypoints.mcp.server import PromptServer, build_server

log = logging.getLogger(__name__)

RELOAD_POLL_S = 0.5
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class McpRoute:
    def __init__(
        self,
        *,
        catalog: Callable[[], PromptCatalog | Awaitable[PromptCatalog]],
        uses: Callable[[], PromptUses | Awaitable[PromptUses]],
        clock: Clock,
        sync_interval_s: float,
        credentials: CredentialStore,
        dashboard_key: str | None,
        allowed_hosts: tuple[str, ...],
        stateless: bool = False,
    ) -> None:
        self._catalog = catalog
        self._uses = uses
        self._clock = clock
        self._sync_interval_s = sync_interval_s
        self._credentials = credentials
        self._dashboard_key = dashboard_key
        self._allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self._stateless = stateless
        self._manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        catalog = await resolve(self._catalog)
        library = catalog.library
        await library.refresh()
        server = build_server(library, await resolve(self._uses), self._clock, pushes_changes=not self._stateless)
        manager = StreamableHTTPSessionManager(
            app=server,
            stateless=self._stateless,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),  # checked here
        )
        async with manager.run(), anyio.create_task_group() as background:
            background.start_soon(self._watch, library, server)
            background.start_soon(catalog.keep_synced, self._sync_interval_s)
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None
                background.cancel_scope.cancel()

    @staticmethod
    async def _watch(library: PromptLibrary, server: PromptServer) -> None:
        """Re-reads the folder twice a second (a listing of a few files: cheap, and unlike
        inotify it works on every volume); a change, however found, is announced once."""
        announced = library.version
        while True:
            await anyio.sleep(RELOAD_POLL_S)
            try:
                await library.refresh()
            except OSError as exc:
                log.warning("The prompts folder cannot be read: %s", exc)
                continue
            if library.version != announced:
                announced = library.version
                if server.pushes_changes:
                    await server.announce_list_changed()

    def handler(self) -> Any:
        @asgi("/mcp", is_mount=True, copy_scope=True)
        async def mcp_endpoint(scope: Any, receive: Any, send: Any) -> None:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            if not await self._host_allowed(headers):
                await _refuse(send, 403, "This host or origin may not use the MCP server")
                return
            if not await self._authorized(headers):
                await _refuse(send, 401, "Missing or invalid key: send Authorization: Bearer <key>")
                return
            if self._manager is None:
                await _refuse(send, 503, "The MCP server is starting or stopping")
                return
            await self._manager.handle_request(scope, receive, send)

        return mcp_endpoint

    async def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        scheme, _, token = (header_value(headers, b"authorization") or b"").decode("latin-1").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        if not bearer:
            return False
        if self._dashboard_key and secrets_match(bearer, self._dashboard_key):
            return True
        credential = await self._credential_of(_text(header_value(headers, b"host")))
        key = credential.client_api_key if credential is not None else None
        return bool(key) and secrets_match(bearer, key or "")

    async def _host_allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        host = _text(header_value(headers, b"host"))
        if not await self._allowed(host):
            return False
        origin = _text(header_value(headers, b"origin"))
        return origin is None or await self._allowed(urlsplit(origin).netloc or None)

    async def _allowed(self, host: str | None) -> bool:
        if not host:
            return False
        bare = (urlsplit(f"//{host}").hostname or "").lower()
        if bare in _LOOPBACK or host.lower() in self._allowed_hosts or bare in self._allowed_hosts:
            return True
        return await self._credential_of(host) is not None

    async def _credential_of(self, host: str | None) -> CredentialFile | None:
        if not host:
            return None
        try:
            stored = await self._credentials.find(parse_host(host).credential_names)
        except (InvalidRequest, CredentialFileInvalid):
            return None
        return stored.credential if stored is not None else None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1").strip() or None if value is not None else None


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="claude-nexus MCP"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
