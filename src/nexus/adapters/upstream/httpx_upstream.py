"""The upstream port over httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache

import aiohttp
import httpx

from nexus.application.ports import UpstreamRequest
from nexus.domain.errors import UpstreamTimeout, UpstreamUnavailable

CONNECT_TIMEOUT_S = 10.0


class HttpxUpstreamResponse:
    """An httpx response read as raw bytes; transport faults become proxy errors."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = [(name.lower(), value) for name, value in response.headers.raw]

    async def iter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            if _is_timeout(exc):
                raise UpstreamTimeout("Upstream went silent for longer than the configured timeout") from None
            raise UpstreamUnavailable(f"Upstream connection broke off ({_cause_name(exc)})") from None

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstreamClient:
    """Sends requests through an httpx transport, called directly (no per-request client work).

    ``timeout_s`` bounds the wait for upstream to answer and any silence within its response.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, base_url: str, timeout_s: float) -> None:
        self._transport = transport
        base = base_url.rstrip("/")
        # Parsing a URL is the dearest part of building a request; clients use a handful of
        # targets (Claude Code: two), so each is parsed once.
        self._url = lru_cache(maxsize=1024)(lambda target: httpx.URL(base + target))
        self._timeout = {
            "connect": min(CONNECT_TIMEOUT_S, timeout_s),
            "read": timeout_s,
            "write": timeout_s,
            "pool": timeout_s,
        }

    async def send(self, request: UpstreamRequest) -> HttpxUpstreamResponse:
        outgoing = httpx.Request(
            request.method,
            self._url(request.target),
            headers=request.headers,
            content=request.body,
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._transport.handle_async_request(outgoing)
        except httpx.TransportError as exc:
            if _is_timeout(exc):
                raise UpstreamTimeout("Upstream did not answer within the configured timeout") from None
            raise UpstreamUnavailable(f"Upstream is unreachable ({_cause_name(exc)})") from None
        return HttpxUpstreamResponse(response)


def _is_timeout(exc: httpx.TransportError) -> bool:
    """True when upstream was reached but went silent; failing to connect at all, even by
    timing out, is "unreachable". Judged by the underlying error, because the aiohttp
    transport labels a refused connection ``ConnectTimeout``."""
    cause = exc.__cause__
    if cause is None:
        return isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout)
    return isinstance(cause, TimeoutError) and not isinstance(cause, aiohttp.ConnectionTimeoutError)


def _cause_name(exc: httpx.TransportError) -> str:
    return type(exc.__cause__ or exc).__name__
