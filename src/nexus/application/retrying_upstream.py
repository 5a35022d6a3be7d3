"""Retries of failed upstream attempts, before anything reaches the client."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from nexus.application.ports import Clock, UpstreamClient, UpstreamRequest, UpstreamResponse
from nexus.domain.errors import UpstreamCircuitOpen, UpstreamTimeout, UpstreamUnavailable
from nexus.domain.headers import header_value
from nexus.domain.retry_policy import RetryPolicy, is_retryable_status, parse_retry_after
from nexus.domain.upstream_attempts import UpstreamAttempt

log = logging.getLogger(__name__)


class RetryingUpstream:
    """An UpstreamClient that tries again on connection errors, timeouts, 5xx and 529.

    Only requests whose body is in memory are retried (a streamed upload cannot be replayed).
    A 429 is never retried, an open circuit is never retried, and the last failed response is
    relayed to the client unchanged when the policy gives up.
    """

    def __init__(
        self,
        *,
        inner: UpstreamClient,
        policy: RetryPolicy,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        circuit_state: Callable[[], str] | None = None,
    ) -> None:
        self._inner = inner
        self._circuit_state = circuit_state
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._policy.max_retries == 0 or not (request.body is None or isinstance(request.body, bytes)):
            return await self._inner.send(request)
        started = self._clock.monotonic()
        retries = 0
        while True:
            try:
                response = await self._inner.send(request)
            except (UpstreamUnavailable, UpstreamTimeout) as error:
                delay = self._delay(retries, started, retry_after_s=None)
                if delay is None:
                    raise
                log.warning("Upstream attempt %d failed (%s); retrying in %.2fs", retries + 1, error.message, delay)
                self._note(request, retries, None, error.message, delay)
            except UpstreamCircuitOpen:
                raise
            else:
                if not is_retryable_status(response.status, header_value(response.headers, b"x-should-retry")):
                    return response
                delay = self._delay(retries, started, retry_after_s=self._retry_after(response))
                if delay is None:
                    return response
                await response.aclose()
                log.warning("Upstream answered %d; retrying in %.2fs", response.status, delay)
                self._note(request, retries, response.status, f"answered {response.status}", delay)
            await self._sleep(delay)
            retries += 1

    def _note(self, request: UpstreamRequest, retries: int, status: int | None, reason: str, delay: float) -> None:
        if request.attempts is not None:
            circuit = self._circuit_state() if self._circuit_state is not None else None
            attempt = UpstreamAttempt(
                number=retries + 1, status=status, reason=reason, wait_s=round(delay, 3), circuit=circuit
            )
            request.attempts.append(attempt)

    def _retry_after(self, response: UpstreamResponse) -> float | None:
        headers = response.headers
        return parse_retry_after(
            header_value(headers, b"retry-after"), header_value(headers, b"retry-after-ms"), self._clock.now_ms() / 1000
        )

    def _delay(self, retries: int, started: float, *, retry_after_s: float | None) -> float | None:
        return self._policy.delay_before_retry(
            retries_done=retries,
            elapsed_s=self._clock.monotonic() - started,
            retry_after_s=retry_after_s,
            jitter=self._jitter(),
        )
