"""What a request passes before it goes upstream: the runaway guard (which may hold it a
moment), then the traffic limits (which count it in). Both learn a request's usage once its
exchange is recorded."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec

from nexus.application.limits.limiter import NOTHING_HELD, Admission, TrafficLimiter
from nexus.application.limits.runaway import RunawayGuard
from nexus.domain.headers import header_value
from nexus.domain.proxy_request import ProxyRequest
from nexus.domain.upstream_auth import ClientAuth, UpstreamAuth


class Used(msgspec.Struct, frozen=True):
    input_tokens: int | None
    cache_write_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None

    @property
    def limited_tokens(self) -> int:
        """The tokens a token limit counts: input (uncached, and written to the cache) and
        output. Cache reads are left out, as Anthropic leaves them out of its input limits."""
        return (self.input_tokens or 0) + (self.cache_write_tokens or 0) + (self.output_tokens or 0)


class Admissions:
    def __init__(self, *, limiter: TrafficLimiter, guard: RunawayGuard) -> None:
        self._limiter = limiter if limiter.configured else None
        self._guard = guard if guard.configured else None

    @property
    def configured(self) -> bool:
        return self._limiter is not None or self._guard is not None

    async def admit(self, request: ProxyRequest, client: ClientAuth, auth: UpstreamAuth) -> Admission:
        """``RateLimited`` when refused; the admission's streams are released when it ends."""
        if self._guard is not None:
            session = header_value(request.headers, b"x-claude-code-session-id")
            agent = header_value(request.headers, b"x-claude-code-agent-id")
            delay = self._guard.check(
                request.request_id,
                request.host.domain,
                session.decode("latin-1") if session else None,
                agent.decode("latin-1") if agent else None,
                auth.window_output_tokens,
            )
            if delay:
                await asyncio.sleep(delay)
        if self._limiter is None:
            return NOTHING_HELD
        key_id = client.key_id() if self._limiter.limits_keys else None
        return self._limiter.admit(request.request_id, request.host.domain, key_id, auth.limits)

    def on_usage(self, request_id: str, used: Used) -> None:
        if self._limiter is not None:
            self._limiter.on_usage(request_id, used.limited_tokens, used.cost_usd)
        if self._guard is not None:
            self._guard.on_output(request_id, used.output_tokens or 0)
