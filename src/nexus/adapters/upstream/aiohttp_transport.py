"""The connection pool behind the httpx client: aiohttp, chosen by measurement (ADR 0002)."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# aiohttp fills these in when a request lacks them; a transparent proxy must not, or Anthropic
# would see (and compress for) an Accept-Encoding the client never sent.
_NEVER_ADD = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def proxy_for(base_url: str) -> httpx.Proxy | None:
    """The outbound proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` name for the upstream.

    Decided once at start-up: aiohttp's ``trust_env`` would look the variables (and
    ``~/.netrc``, on a thread) up again for every request, which measured as most of the
    proxy's cost under load.
    """
    parts = urlsplit(base_url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    url = urllib.request.getproxies().get(parts.scheme)
    return httpx.Proxy(url) if url else None


@asynccontextmanager
async def open_aiohttp_transport(*, max_connections: int, base_url: str) -> AsyncIterator[httpx.AsyncBaseTransport]:
    """An httpx transport over one shared aiohttp session, closed on exit."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, ttl_dns_cache=300, ssl=httpx.create_ssl_context(), enable_cleanup_closed=True
        ),
        skip_auto_headers=_NEVER_ADD,
        auto_decompress=False,
        # Cookies set for one client must never ride along on another client's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    transport = AiohttpTransport(client=session, proxy=proxy_for(base_url))
    try:
        yield transport
    finally:
        await transport.aclose()
