"""The upstream Anthropic API, as the proxy uses it."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from nexus.domain.upstream_attempts import UpstreamAttempt


class UpstreamRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request to send as is: ``target`` is the path with its query string."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | AsyncIterable[bytes] | None
    # The exchange's attempts worth recording are appended here (retries, failovers, the
    # circuit's refusals and probes): see nexus.domain.upstream_attempts.
    attempts: list[UpstreamAttempt] | None = None
    # The credential's non-secret name, for those entries (a reference, nothing computed).
    account_id: str | None = None


@runtime_checkable
class UpstreamResponse(Protocol):
    """An upstream response whose body has not been read yet."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...

    def iter_raw(self) -> AsyncIterator[bytes]:
        """The body bytes exactly as received (never decompressed), chunk by chunk as they arrive.

        Raises UpstreamUnavailable (or UpstreamTimeout) if upstream breaks off.
        """
        ...

    async def aclose(self) -> None:
        """Release the connection; closing before the end aborts the upstream request."""
        ...


@runtime_checkable
class UpstreamClient(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send a request and return once the response headers are in.

        Raises UpstreamUnavailable when upstream cannot be reached, UpstreamTimeout when it
        does not answer in time.
        """
        ...
