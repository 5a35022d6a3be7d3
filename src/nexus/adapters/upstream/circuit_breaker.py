"""A circuit breaker in front of the upstream client (pybreaker)."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime

import pybreaker

from nexus.application.ports import UpstreamClient, UpstreamRequest, UpstreamResponse
from nexus.application.ports.health import ProbeResult
from nexus.domain.errors import UpstreamCircuitOpen

log = logging.getLogger(__name__)


class _FailedResponse(Exception):
    """A 5xx/529 answer, raised inside the breaker so it counts as a failure."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    """An open circuit is logged (and so reaches Slack, ADR 11); closing again too."""

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: object, new_state: object) -> None:
        new, old = getattr(new_state, "name", None), getattr(old_state, "name", None)
        if new == "open":
            log.warning("Circuit open for %s after %d failures in a row: answering 503 for now", cb.name, cb.fail_max)
        elif new == "closed" and old not in (None, "closed"):
            log.info("Circuit closed for %s: upstream answers again", cb.name)


def new_breaker(*, name: str, fail_max: int, reset_timeout_s: float) -> pybreaker.CircuitBreaker:
    """One breaker per upstream base URL; a client going away is not the upstream's failure."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        exclude=[asyncio.CancelledError, GeneratorExit],
        throw_new_error_on_trip=False,
        name=name,
        listeners=[_LogStateChanges()],
    )


class BreakerUpstreamClient:
    """Counts connection errors, timeouts and 5xx/529 answers; 4xx are the client's business.

    While the circuit is open, requests fail at once with 503 ``overloaded_error`` and a
    ``retry-after`` for the time left; after ``reset_timeout`` one probe is let through, and
    its success closes the circuit again.
    """

    def __init__(self, *, inner: UpstreamClient, breaker: pybreaker.CircuitBreaker) -> None:
        self._inner = inner
        self._breaker = breaker

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    @property
    def probe_name(self) -> str:
        return "upstream"

    async def probe(self) -> ProbeResult:
        """Healthy unless the circuit is open (half-open is recovering)."""
        state = self.state
        return ProbeResult(healthy=state != "open", detail={"base_url": self._breaker.name, "circuit": state})

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        try:
            with self._breaker.calling():
                response = await self._inner.send(request)
                if response.status >= 500:
                    raise _FailedResponse(response)
        except _FailedResponse as failed:
            return failed.response
        except pybreaker.CircuitBreakerError:
            raise UpstreamCircuitOpen(
                "Upstream is failing; the proxy stopped calling it for a moment", retry_after_s=self._retry_after()
            ) from None
        return response

    def _retry_after(self) -> int:
        opened_at = self._breaker._state_storage.opened_at
        reset = float(self._breaker.reset_timeout)
        if opened_at is None:
            return math.ceil(reset)
        left = reset - (datetime.now(UTC) - opened_at).total_seconds()
        return max(1, math.ceil(left))
