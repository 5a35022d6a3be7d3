"""BreakerUpstreamClient over a scripted upstream, with pybreaker's clock pinned."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pybreaker
import pytest

from nexus.adapters.upstream import circuit_breaker
from nexus.adapters.upstream.circuit_breaker import BreakerUpstreamClient, new_breaker
from nexus.application.ports import UpstreamRequest
from nexus.application.retrying_upstream import RetryingUpstream
from nexus.domain.errors import UpstreamCircuitOpen, UpstreamTimeout, UpstreamUnavailable
from nexus.domain.retry_policy import RetryPolicy
from nexus.domain.upstream_attempts import UpstreamAttempt
from tests.fakes import FixedClock
from tests.unit.scripted_upstream import ScriptedResponse, ScriptedUpstream

REQUEST = UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}")


class BreakerTime:
    """The wall clock pybreaker and the adapter read (``datetime.now``), moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
        clock = self

        class PinnedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> PinnedDatetime:
                return cls.fromtimestamp(clock.now.timestamp(), tz)

        monkeypatch.setattr(pybreaker, "datetime", PinnedDatetime)
        monkeypatch.setattr(circuit_breaker, "datetime", PinnedDatetime)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def time(monkeypatch: pytest.MonkeyPatch) -> BreakerTime:
    return BreakerTime(monkeypatch)


def guarded(upstream: ScriptedUpstream, *, fail_max: int = 3, reset_s: float = 30.0) -> BreakerUpstreamClient:
    breaker = new_breaker(name="https://api.example", fail_max=fail_max, reset_timeout_s=reset_s)
    return BreakerUpstreamClient(inner=upstream, breaker=breaker)


def ok() -> ScriptedResponse:
    return ScriptedResponse(200)


async def fail_times(sut: BreakerUpstreamClient, n: int) -> None:
    for _ in range(n):
        with contextlib.suppress(UpstreamUnavailable):
            await sut.send(REQUEST)


async def test_it_stays_closed_below_the_threshold(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("refused"), UpstreamUnavailable("refused"), ok())
    sut = guarded(upstream, fail_max=3)
    await fail_times(sut, 2)
    assert sut.state == "closed"
    assert (await sut.send(REQUEST)).status == 200


@pytest.mark.parametrize(
    "failure",
    [UpstreamUnavailable("refused"), UpstreamTimeout("silent"), ScriptedResponse(529), ScriptedResponse(500)],
    ids=["connection error", "timeout", "529", "500"],
)
async def test_it_opens_after_n_consecutive_failures(time: BreakerTime, failure: Any) -> None:
    upstream = ScriptedUpstream(failure)
    sut = guarded(upstream, fail_max=3)
    for attempt in range(3):
        try:
            response = await sut.send(REQUEST)
        except (UpstreamUnavailable, UpstreamTimeout):
            pass
        else:
            # A failing answer is still upstream's answer: it comes back untouched, unclosed.
            assert response.status == failure.status
            assert isinstance(response, ScriptedResponse)
            assert not response.closed
        assert sut.state == ("open" if attempt == 2 else "closed")
    assert upstream.calls == 3


async def test_while_open_it_answers_503_overloaded_without_calling_upstream(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("refused"), UpstreamUnavailable("refused"), ok())
    sut = guarded(upstream, fail_max=2, reset_s=30)
    await fail_times(sut, 2)
    errors = []
    for _ in range(5):
        with pytest.raises(UpstreamCircuitOpen) as raised:
            await sut.send(REQUEST)
        errors.append(raised.value)
    assert upstream.calls == 2
    error = errors[-1]
    assert (error.status, error.error_type) == (503, "overloaded_error")
    assert error.retry_after_s == 30


async def test_the_retry_after_counts_down_to_the_next_probe(time: BreakerTime) -> None:
    sut = guarded(ScriptedUpstream(UpstreamUnavailable("refused")), fail_max=1, reset_s=30)
    await fail_times(sut, 1)
    time.advance(12.4)
    with pytest.raises(UpstreamCircuitOpen) as raised:
        await sut.send(REQUEST)
    assert raised.value.retry_after_s == 18
    time.advance(17.5)
    with pytest.raises(UpstreamCircuitOpen) as raised:
        await sut.send(REQUEST)
    assert raised.value.retry_after_s == 1, "never 0: that would invite an instant retry"


async def test_an_open_circuit_reports_itself_unhealthy(time: BreakerTime) -> None:
    sut = guarded(ScriptedUpstream(UpstreamUnavailable("refused")), fail_max=1)
    assert (await sut.probe()).healthy
    await fail_times(sut, 1)
    probe = await sut.probe()
    assert not probe.healthy
    assert probe.detail == {"base_url": "https://api.example", "circuit": "open"}


async def test_a_successful_probe_after_the_reset_timeout_closes_it(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("a"), UpstreamUnavailable("b"), ok())
    sut = guarded(upstream, fail_max=2, reset_s=30)
    await fail_times(sut, 2)
    time.advance(29)
    with pytest.raises(UpstreamCircuitOpen):
        await sut.send(REQUEST)
    time.advance(1.5)
    assert (await sut.send(REQUEST)).status == 200
    assert sut.state == "closed"
    assert (await sut.send(REQUEST)).status == 200
    assert upstream.calls == 4


async def test_a_failed_probe_opens_it_again_for_a_full_reset_timeout(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("a"), UpstreamUnavailable("b"), ScriptedResponse(529), ok())
    sut = guarded(upstream, fail_max=2, reset_s=30)
    await fail_times(sut, 2)
    time.advance(31)
    assert (await sut.send(REQUEST)).status == 529
    assert sut.state == "open"
    with pytest.raises(UpstreamCircuitOpen) as raised:
        await sut.send(REQUEST)
    assert raised.value.retry_after_s == 30
    assert upstream.calls == 3


async def test_4xx_answers_are_not_failures_and_break_a_run_of_them(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(
        UpstreamUnavailable("a"),
        UpstreamUnavailable("b"),
        ScriptedResponse(429),
        UpstreamUnavailable("c"),
        UpstreamUnavailable("d"),
        ScriptedResponse(400),
        ScriptedResponse(401),
    )
    sut = guarded(upstream, fail_max=3)
    await fail_times(sut, 2)
    assert (await sut.send(REQUEST)).status == 429
    await fail_times(sut, 2)
    assert (await sut.send(REQUEST)).status == 400
    assert (await sut.send(REQUEST)).status == 401
    assert sut.state == "closed"


async def test_a_client_going_away_is_not_counted_as_a_failure(time: BreakerTime) -> None:
    gate = asyncio.Event()
    upstream = ScriptedUpstream(ok(), gate=gate)
    sut = guarded(upstream, fail_max=1)
    for _ in range(3):
        task = asyncio.create_task(sut.send(REQUEST))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert upstream.cancelled == 3
    assert sut.state == "closed"


async def test_a_client_going_away_does_not_reset_the_run_of_failures(time: BreakerTime) -> None:
    gate = asyncio.Event()
    refused = UpstreamUnavailable("refused")
    upstream = ScriptedUpstream(refused, refused, ok(), refused)  # the ok() is never delivered
    sut = guarded(upstream, fail_max=3)
    await fail_times(sut, 2)
    upstream.gate = gate
    leaving = asyncio.create_task(sut.send(REQUEST))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    upstream.gate = None
    await fail_times(sut, 1)
    assert sut.state == "open", "two failures, a client who left, a third failure: three in a row"


async def test_a_client_leaving_during_the_probe_does_not_close_the_circuit(time: BreakerTime) -> None:
    gate = asyncio.Event()
    upstream = ScriptedUpstream(UpstreamUnavailable("refused"))
    sut = guarded(upstream, fail_max=1, reset_s=30)
    await fail_times(sut, 1)
    time.advance(31)
    upstream.gate = gate  # upstream now hangs
    probe = asyncio.create_task(sut.send(REQUEST))
    await asyncio.sleep(0)
    assert sut.state == "half-open"
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert sut.state != "closed"


async def test_only_one_probe_reaches_upstream_while_half_open(time: BreakerTime) -> None:
    gate = asyncio.Event()
    upstream = ScriptedUpstream(UpstreamUnavailable("refused"))
    sut = guarded(upstream, fail_max=1, reset_s=30)
    await fail_times(sut, 1)
    time.advance(31)
    upstream.gate = gate
    probe = asyncio.create_task(sut.send(REQUEST))
    await asyncio.sleep(0)
    others = [asyncio.create_task(sut.send(REQUEST)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(probe, *others, return_exceptions=True)
    assert upstream.calls == 2, "the failed first attempt and one probe"
    assert all(isinstance(result, UpstreamCircuitOpen) for result in results[1:])


async def test_retries_pass_through_the_breaker_and_stop_when_it_opens(time: BreakerTime) -> None:
    upstream = ScriptedUpstream(ScriptedResponse(529))
    clock = FixedClock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    sut = RetryingUpstream(
        inner=guarded(upstream, fail_max=2), policy=RetryPolicy(max_retries=5), clock=clock, sleep=sleep
    )
    with pytest.raises(UpstreamCircuitOpen):
        await sut.send(REQUEST)
    assert upstream.calls == 2, "each attempt counted; the open circuit ended the retry loop"
    assert len(waits) == 2
    assert all(response.closed for response in upstream.responses)


def retrying_over(breaker: BreakerUpstreamClient, reads: list[str], *, max_retries: int = 1) -> RetryingUpstream:
    """Retries around the breaker, as the container builds them; ``reads`` lists every read
    of the circuit's state by the retries."""

    def circuit_state() -> str:
        reads.append(breaker.state)
        return breaker.state

    clock = FixedClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return RetryingUpstream(
        inner=breaker,
        policy=RetryPolicy(max_retries=max_retries),
        clock=clock,
        sleep=sleep,
        circuit_state=circuit_state,
    )


def noted(attempts: list[UpstreamAttempt]) -> list[tuple[object, ...]]:
    return [(a.number, a.status, a.reason, a.account_id, a.circuit, a.sent, a.answered) for a in attempts]


async def test_the_attempts_of_an_exchange_show_the_circuit_opening_and_refusing() -> None:
    sut = retrying_over(guarded(ScriptedUpstream(ScriptedResponse(529), ScriptedResponse(500)), fail_max=2), [])
    opened: list[UpstreamAttempt] = []
    request = msgspec.structs.replace(REQUEST, attempts=opened, account_id="acc_a")
    assert (await sut.send(request)).status == 500
    assert noted(opened) == [
        (1, 529, "answered 529", "acc_a", "closed", True, False),
        (2, 500, "answered 500 (relayed)", "acc_a", "open", True, True),
    ]
    refused: list[UpstreamAttempt] = []
    with pytest.raises(UpstreamCircuitOpen):
        await sut.send(msgspec.structs.replace(REQUEST, attempts=refused, account_id="acc_a"))
    assert noted(refused) == [(1, None, "circuit open: not sent", "acc_a", "open", False, False)]


async def test_a_half_open_probe_is_noted_and_the_closed_circuit_is_not_even_read() -> None:
    breaker = guarded(ScriptedUpstream(UpstreamUnavailable("refused"), ok()), fail_max=1, reset_s=0.05)
    reads: list[str] = []
    sut = retrying_over(breaker, reads)
    opened: list[UpstreamAttempt] = []
    with pytest.raises(UpstreamCircuitOpen):
        await sut.send(msgspec.structs.replace(REQUEST, attempts=opened))  # its retry is refused
    assert [(a.status, a.circuit, a.sent) for a in opened] == [(None, "open", True), (None, "open", False)]
    await asyncio.sleep(0.06)  # pybreaker's own clock: past the reset timeout
    probe: list[UpstreamAttempt] = []
    assert (await sut.send(msgspec.structs.replace(REQUEST, attempts=probe))).status == 200
    assert noted(probe) == [(1, 200, "half-open probe answered 200", None, "closed", True, True)]
    reads.clear()
    plain: list[UpstreamAttempt] = []
    for retrying in (sut, retrying_over(breaker, reads, max_retries=0)):  # the retry loop and the single attempt
        assert (await retrying.send(msgspec.structs.replace(REQUEST, attempts=plain))).status == 200
    assert (plain, reads) == ([], []), "an answer through the closed circuit records and reads nothing"
