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
from nexus.domain.upstream_attempts import UpstreamAttempt, next_number

log = logging.getLogger(__name__)


class RetryingUpstream:
    """An UpstreamClient that tries again on connection errors, timeouts, 5xx and 529.

    Only requests whose body is in memory are retried (a streamed upload cannot be replayed).
    A 429 is never retried, an open circuit is never retried, and the last failed response is
    relayed to the client unchanged when the policy gives up.

    Each retried attempt is noted on the request's ``attempts`` with the circuit's state after
    it, and the final failure too when the circuit is not closed after it; an attempt that
    answers is not looked at further, so the success path does no more than before.
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
            # The only attempt (retries off, or a body that cannot be replayed), inline rather
            # than in a helper coroutine: the success path keeps its single await.
            try:
                response = await self._inner.send(request)
            except (UpstreamUnavailable, UpstreamTimeout) as error:
                self._note_last(request, None, f"{error.message} (reported to the client)")
                raise
            if response.status >= 500:
                self._note_last(request, response.status, f"answered {response.status} (relayed)")
            return response
        started = self._clock.monotonic()
        retries = 0
        while True:
            try:
                response = await self._inner.send(request)
            except (UpstreamUnavailable, UpstreamTimeout) as error:
                delay = self._delay(retries, started, retry_after_s=None)
                if delay is None:
                    self._note_last(request, None, f"{error.message} (reported to the client)")
                    raise
                log.warning("Upstream attempt %d failed (%s); retrying in %.2fs", retries + 1, error.message, delay)
                self._note(request, None, error.message, delay)
            except UpstreamCircuitOpen:
                raise  # the breaker noted its refusal
            else:
                if not is_retryable_status(response.status, header_value(response.headers, b"x-should-retry")):
                    if response.status >= 500:  # a 501, or x-should-retry: false
                        self._note_last(request, response.status, f"answered {response.status} (relayed)")
                    return response
                delay = self._delay(retries, started, retry_after_s=self._retry_after(response))
                if delay is None:
                    self._note_last(request, response.status, f"answered {response.status} (relayed)")
                    return response
                await response.aclose()
                log.warning("Upstream answered %d; retrying in %.2fs", response.status, delay)
                self._note(request, response.status, f"answered {response.status}", delay)
            await self._sleep(delay)
            retries += 1

    def _note(self, request: UpstreamRequest, status: int | None, reason: str, delay: float) -> None:
        """A failed attempt that is retried, with the circuit's state after it."""
        if (attempts := request.attempts) is not None:
            circuit = self._circuit_state() if self._circuit_state is not None else None
            attempts.append(
                UpstreamAttempt(
                    number=next_number(attempts),
                    status=status,
                    reason=reason,
                    wait_s=round(delay, 3),
                    account_id=request.account_id,
                    circuit=circuit,
                )
            )

    def _note_last(self, request: UpstreamRequest, status: int | None, reason: str) -> None:
        """A failure the client gets, recorded only when it left the circuit open (or
        half-open): with the circuit closed, an answer needs no entry (the convention of
        nexus.domain.upstream_attempts). Only failures come here, never the success path."""
        if (attempts := request.attempts) is None or self._circuit_state is None:
            return
        circuit = self._circuit_state()
        if circuit == "closed":
            return
        attempts.append(
            UpstreamAttempt(
                number=next_number(attempts),
                status=status,
                reason=reason,
                wait_s=0.0,
                account_id=request.account_id,
                circuit=circuit,
                answered=True,
            )
        )

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
