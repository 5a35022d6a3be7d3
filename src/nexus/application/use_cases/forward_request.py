"""Forward one client request upstream."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

from nexus.application.ports import UpstreamClient, UpstreamRequest, UpstreamResponse
from nexus.application.use_cases.resolve_credential import ResolveCredential
from nexus.domain.headers import upstream_request_headers
from nexus.domain.proxy_request import ProxyRequest
from nexus.domain.upstream_auth import read_client_auth


@dataclass(frozen=True, slots=True)
class Forwarded:
    """Upstream's response (headers in, body unread) and whose credential it went with."""

    response: UpstreamResponse
    account_id: str


class ForwardRequest:
    """Send a client's request upstream with the right credential, bytes untouched.

    Method, path, query string and body go as received; headers lose only hop-by-hop ones,
    ``host``, a recomputed ``content-length`` and, when a stored credential replaces them,
    the client's own credential headers. Returns once upstream's response headers are in.
    """

    def __init__(self, *, resolve_credential: ResolveCredential, upstream: UpstreamClient) -> None:
        self._resolve_credential = resolve_credential
        self._upstream = upstream

    async def execute(self, request: ProxyRequest, body_stream: AsyncIterable[bytes] | None = None) -> Forwarded:
        auth = await self._resolve_credential.execute(request.host, read_client_auth(request.headers))
        headers = upstream_request_headers(request.headers, auth, keep_content_length=request.body is None)
        body = request.body if request.body is not None else body_stream
        response = await self._upstream.send(
            UpstreamRequest(method=request.method, target=request.target, headers=headers, body=body)
        )
        return Forwarded(response=response, account_id=auth.account_id)
