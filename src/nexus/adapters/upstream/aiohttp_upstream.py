"""The upstream port over one shared aiohttp session (ADR 0002, revised by ADR 0021).

aiohttp is called directly, without httpx on top: measured on this machine class, a stream's
first byte took 1.13 ms through httpx over aiohttp and 0.57 ms through aiohttp alone (httpx
over its own httpcore: 1.50 ms). httpx stays the client of everything that is not the hot
path (Slack, GitHub, OAuth, Gemini).
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
import httpx
from yarl import URL

from nexus.application.ports import UpstreamRequest
from nexus.domain.errors import UpstreamTimeout, UpstreamUnavailable

CONNECT_TIMEOUT_S = 10.0
# aiohttp fills these in when a request lacks them; a transparent proxy must not, or Anthropic
# would see (and compress for) an Accept-Encoding the client never sent.
_NEVER_ADD = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def proxy_for(base_url: str) -> str | None:
    """The outbound proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` name for the upstream.

    Decided once at start-up: aiohttp's ``trust_env`` would look the variables (and
    ``~/.netrc``, on a thread) up again for every request, which measured as most of the
    proxy's cost under load.
    """
    parts = urlsplit(base_url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme) or None


@asynccontextmanager
async def open_upstream_session(*, max_connections: int) -> AsyncIterator[aiohttp.ClientSession]:
    """One session (its connection pool) for the app's lifetime, closed on exit."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, ttl_dns_cache=300, ssl=httpx.create_ssl_context(), enable_cleanup_closed=True
        ),
        skip_auto_headers=_NEVER_ADD,
        auto_decompress=False,  # bodies are relayed as received: content-encoding stays true
        # Cookies set for one client must never ride along on another client's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )
    try:
        yield session
    finally:
        await session.close()


class AiohttpUpstreamResponse:
    """An aiohttp response read as raw bytes; transport faults become proxy errors."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = [(name.lower(), value) for name, value in response.raw_headers]

    async def iter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeout("Upstream went silent for longer than the configured timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"Upstream connection broke off ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        # A body read to its end gives the connection back to the pool; one left unread (the
        # client went away) closes it, so upstream stops generating.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpUpstreamClient:
    """Sends requests through the shared session. ``timeout_s`` bounds the wait for a
    connection and for upstream to answer, and any silence within its response; connecting
    has its own cap (10 s)."""

    def __init__(
        self, *, session: aiohttp.ClientSession, base_url: str, timeout_s: float, proxy: str | None = None
    ) -> None:
        self._session = session
        self._proxy = proxy
        base = base_url.rstrip("/")
        # Parsing a URL is the dearest part of building a request; clients use a handful of
        # targets (Claude Code: two), so each is parsed once. ``encoded``: the path and query
        # go out byte for byte as the client sent them, never re-quoted.
        self._url = lru_cache(maxsize=1024)(lambda target: URL(base + target, encoded=True))
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=min(CONNECT_TIMEOUT_S, timeout_s), sock_read=timeout_s
        )

    async def send(self, request: UpstreamRequest) -> AiohttpUpstreamResponse:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
        try:
            response = await self._session.request(
                request.method,
                self._url(request.target),
                headers=headers,
                data=request.body,
                timeout=self._timeout,
                proxy=self._proxy,
                allow_redirects=False,
            )
        except aiohttp.ConnectionTimeoutError as exc:  # never reached: unreachable, not silent
            raise UpstreamUnavailable(f"Upstream is unreachable ({_cause_name(exc)})") from None
        except TimeoutError:
            raise UpstreamTimeout("Upstream did not answer within the configured timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"Upstream is unreachable ({_cause_name(exc)})") from None
        return AiohttpUpstreamResponse(response)


def _cause_name(exc: aiohttp.ClientError) -> str:
    """What went wrong, by name: a refused connection is ``ConnectionRefusedError``."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return type(exc.os_error).__name__
    return type(exc).__name__
