"""Forward one client request upstream."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

from nexus.application.limits.admissions import Admissions
from nexus.application.limits.limiter import NOTHING_HELD, Admission, RateLimited, limit_reached
from nexus.application.ports import UpstreamClient, UpstreamRequest, UpstreamResponse
from nexus.application.use_cases.resolve_credential import ResolveCredential
from nexus.domain.errors import ProxyError
from nexus.domain.headers import upstream_request_headers
from nexus.domain.key_rate_limits import parse_key_rate_limit, retry_after_s
from nexus.domain.proxy_request import ProxyRequest
from nexus.domain.rate_limits import parse_unified_rate_limit
from nexus.domain.upstream_attempts import UpstreamAttempt, next_number
from nexus.domain.upstream_auth import ClientAuth, UpstreamAuth, read_client_auth


@dataclass(frozen=True, slots=True)
class Forwarded:
    """Upstream's response (headers in, body unread), whose credential it went with, and its
    hold on the traffic limits' streams (released when the exchange ends)."""

    response: UpstreamResponse
    account_id: str
    admission: Admission = NOTHING_HELD


class ForwardRequest:
    """Send a client's request upstream with the right credential, bytes untouched.

    Method, path, query string and body go as received; headers lose only hop-by-hop ones,
    ``host``, a recomputed ``content-length`` and, when a stored credential replaces them,
    the client's own credential headers. Returns once upstream's response headers are in.
    """

    def __init__(
        self,
        *,
        resolve_credential: ResolveCredential,
        upstream: UpstreamClient,
        admissions: Admissions | None = None,
        circuit_state: Callable[[], str] | None = None,
    ) -> None:
        self._resolve_credential = resolve_credential
        self._upstream = upstream
        self._circuit_state = circuit_state  # read for a failover's entry only
        self._admissions = admissions if admissions is not None and admissions.configured else None

    async def execute(
        self,
        request: ProxyRequest,
        body_stream: AsyncIterable[bytes] | None = None,
        *,
        attempts: list[UpstreamAttempt] | None = None,
    ) -> Forwarded:
        """``attempts`` receives the upstream attempts worth recording (retries, failovers, the
        circuit's refusals and probes; nexus.domain.upstream_attempts)."""
        client = read_client_auth(request.headers)
        auth = await self._resolve_credential.execute(request.host, client, headers=request.headers)
        admission = await self._admit(request, client, auth)
        try:
            response = await self._send(request, auth, body_stream, attempts)
            if auth.pooled and response.status == 429 and request.body is not None:
                response, auth = await self._fail_over(request, client, auth, response, attempts)
        except BaseException:
            admission.release()
            raise
        return Forwarded(response=response, account_id=auth.account_id, admission=admission)

    async def _fail_over(
        self,
        request: ProxyRequest,
        client: ClientAuth,
        auth: UpstreamAuth,
        refused: UpstreamResponse,
        attempts: list[UpstreamAttempt] | None,
    ) -> tuple[UpstreamResponse, UpstreamAuth]:
        """The pool's account is out (it now rests): the same request once more with another,
        or the 429 as it is when there is no other usable account."""
        try:
            other = await self._resolve_credential.execute(
                request.host, client, headers=request.headers, avoid=frozenset({auth.account_id})
            )
        except ProxyError:
            return refused, auth
        if other.account_id == auth.account_id:
            return refused, auth
        await refused.aclose()
        if attempts is not None:
            if attempts and attempts[-1].answered:
                # The breaker took this 429 for the answer (a half-open probe's): it is not one now.
                attempts.pop()
            circuit = self._circuit_state() if self._circuit_state is not None else None
            attempts.append(
                UpstreamAttempt(
                    number=next_number(attempts),
                    status=429,
                    reason=f"answered 429: the pool's account rests, failed over to {other.account_id}",
                    wait_s=0.0,
                    account_id=auth.account_id,
                    circuit=circuit,
                )
            )
        return await self._send(request, other, None, attempts), other

    async def _send(
        self,
        request: ProxyRequest,
        auth: UpstreamAuth,
        body_stream: AsyncIterable[bytes] | None,
        attempts: list[UpstreamAttempt] | None,
    ) -> UpstreamResponse:
        headers = upstream_request_headers(request.headers, auth, keep_content_length=request.body is None)
        body = request.body if request.body is not None else body_stream
        response = await self._upstream.send(
            UpstreamRequest(
                method=request.method,
                target=request.target,
                headers=headers,
                body=body,
                attempts=attempts,
                account_id=auth.account_id,
            )
        )
        if auth.pooled and (pool := self._resolve_credential.pool) is not None:
            unified = parse_unified_rate_limit(response.headers)
            pool.observe(
                auth.account_id,
                unified,
                status=response.status,
                key_window=parse_key_rate_limit(response.headers) if unified is None else None,
                retry_after_s=retry_after_s(response.headers) if response.status == 429 else None,
            )
        return response

    async def _admit(self, request: ProxyRequest, client: ClientAuth, auth: UpstreamAuth) -> Admission:
        if self._admissions is None:
            return NOTHING_HELD
        try:
            return await self._admissions.admit(request, client, auth)
        except RateLimited as refused:
            raise limit_reached(refused.refusal) from None
