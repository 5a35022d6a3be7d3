"""A circuit breaker in front of the upstream client (pybreaker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC, datetime

import pybreaker

from nexus.application.ports import UpstreamClient, UpstreamRequest, UpstreamResponse
from nexus.application.ports.health import ProbeResult
from nexus.domain.errors import UpstreamCircuitOpen
from nexus.domain.upstream_attempts import UpstreamAttempt, next_number

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
    """One breaker per upstream base URL."""
    return pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        throw_new_error_on_trip=False,
        name=name,
        listeners=[_LogStateChanges()],
    )


class BreakerUpstreamClient:
    """Counts connection errors, timeouts and 5xx/529 answers; 4xx are the client's business.

    While the circuit is open, requests fail at once with 503 ``overloaded_error`` and a
    ``retry-after`` for the time left; after ``reset_timeout`` one probe is let through (the
    requests arriving while it is awaited are answered 503 too), and its success closes the
    circuit again.

    pybreaker keeps the state and the counts, but it only sees a call once it has an outcome:
    wrapped around the ``await`` it would count a client going away (``CancelledError``) as a
    success, closing the circuit on a probe upstream never answered, and its half-open state
    lets every concurrent call through. So admission and the single probe are decided here,
    and an outcome is settled through ``breaker.call`` after the answer, synchronously.

    A refusal is noted on the request's ``attempts`` ("circuit open: not sent"), and so is a
    probe's answer; a call through the closed circuit notes nothing.
    """

    def __init__(self, *, inner: UpstreamClient, breaker: pybreaker.CircuitBreaker) -> None:
        self._inner = inner
        self._breaker = breaker
        self._probing = False

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
            probe = self._admit()
        except UpstreamCircuitOpen:
            self._note(request, None, f"circuit {self.state}: not sent", sent=False)
            raise
        try:
            response = await self._inner.send(request)
        except asyncio.CancelledError:
            raise  # the client left: upstream neither failed nor answered
        except Exception as exc:
            self._settle(exc)
            raise
        finally:
            if probe:
                self._probing = False
        self._settle(_FailedResponse(response) if response.status >= 500 else None)
        if probe and response.status < 500:
            # The circuit was half-open when the probe went, so the exchange shows it. Its answer
            # is final (only 5xx are retried, and the retries note those), unless it is a pool's
            # 429 that fails over: the failover's entry then takes this one's place.
            self._note(request, response.status, f"half-open probe answered {response.status}", sent=True)
        return response

    def _note(self, request: UpstreamRequest, status: int | None, reason: str, *, sent: bool) -> None:
        """An attempt the circuit refused or probed with, on the exchange's attempts; never on
        the path of a closed circuit, which records nothing (nexus.domain.upstream_attempts)."""
        if (attempts := request.attempts) is not None:
            attempts.append(
                UpstreamAttempt(
                    number=next_number(attempts),
                    status=status,
                    reason=reason,
                    wait_s=0.0,
                    account_id=request.account_id,
                    circuit=self.state,
                    sent=sent,
                    answered=sent,  # a refusal got no answer; a probe's answer is the client's
                )
            )

    def _admit(self) -> bool:
        """Let the call through (True when it is the half-open probe) or refuse it."""
        state = self._breaker.current_state
        if state == pybreaker.STATE_OPEN:
            if self._open_for() < float(self._breaker.reset_timeout):
                raise self._refusal()
            self._breaker.half_open()
            state = pybreaker.STATE_HALF_OPEN
        if state != pybreaker.STATE_HALF_OPEN:
            return False
        if self._probing:
            raise self._refusal()
        self._probing = True
        return True

    def _settle(self, failure: Exception | None) -> None:
        """Count one outcome: a failure runs toward (or back to) open, a success closes."""
        if self._breaker.current_state == pybreaker.STATE_OPEN:
            return  # opened by another call meanwhile; this outcome adds nothing

        def outcome() -> None:
            if failure is not None:
                raise failure

        # pybreaker re-raises the failure it counted, or CircuitBreakerError on a trip
        counted: tuple[type[Exception], ...] = (pybreaker.CircuitBreakerError,)
        if failure is not None:
            counted = (*counted, type(failure))
        with contextlib.suppress(*counted):
            self._breaker.call(outcome)

    def _refusal(self) -> UpstreamCircuitOpen:
        return UpstreamCircuitOpen(
            "Upstream is failing; the proxy stopped calling it for a moment", retry_after_s=self._retry_after()
        )

    def _open_for(self) -> float:
        opened_at = self._breaker._state_storage.opened_at
        return math.inf if opened_at is None else (datetime.now(UTC) - opened_at).total_seconds()

    def _retry_after(self) -> int:
        opened_at = self._breaker._state_storage.opened_at
        reset = float(self._breaker.reset_timeout)
        if opened_at is None:
            return math.ceil(reset)
        left = reset - (datetime.now(UTC) - opened_at).total_seconds()
        return max(1, math.ceil(left))
