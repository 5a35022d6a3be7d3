"""The connection pool behind the httpx client: aiohttp, chosen by measurement (ADR 0002)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# aiohttp fills these in when a request lacks them; a transparent proxy must not, or Anthropic
# would see (and compress for) an Accept-Encoding the client never sent.
_NEVER_ADD = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


@asynccontextmanager
async def open_aiohttp_transport(*, max_connections: int) -> AsyncIterator[httpx.AsyncBaseTransport]:
    """An httpx transport over one shared aiohttp session, closed on exit."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, ttl_dns_cache=300, ssl=httpx.create_ssl_context(), enable_cleanup_closed=True
        ),
        skip_auto_headers=_NEVER_ADD,
        auto_decompress=False,
        # Cookies set for one client must never ride along on another client's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=True,
        timeout=aiohttp.ClientTimeout(total=None),
    )
    transport = AiohttpTransport(client=session)
    try:
        yield transport
    finally:
        await transport.aclose()
