"""RetryingUpstream over a scripted upstream, with a fixed clock and a sleep that only records."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterable, AsyncIterator

import pytest

from nexus.application.ports import UpstreamRequest
from nexus.application.retrying_upstream import RetryingUpstream
from nexus.domain.errors import UpstreamCircuitOpen, UpstreamTimeout, UpstreamUnavailable
from nexus.domain.retry_policy import RetryPolicy
from tests.fakes import FixedClock
from tests.unit.scripted_upstream import ScriptedResponse, ScriptedUpstream


class RecordedSleep:
    """Stands in for asyncio.sleep: notes each wait and moves the clock on by it."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def retrying(
    upstream: ScriptedUpstream, policy: RetryPolicy | None = None, *, jitter: float = 0.0
) -> tuple[RetryingUpstream, RecordedSleep, FixedClock]:
    clock = FixedClock()
    sleep = RecordedSleep(clock)
    sut = RetryingUpstream(
        inner=upstream, policy=policy or RetryPolicy(), clock=clock, sleep=sleep, jitter=lambda: jitter
    )
    return sut, sleep, clock


def messages_request(body: bytes | AsyncIterable[bytes] | None = b'{"model":"m","messages":[]}') -> UpstreamRequest:
    return UpstreamRequest(method="POST", target="/v1/messages", headers=[(b"x-api-key", b"k")], body=body)


def ok() -> ScriptedResponse:
    return ScriptedResponse(200, [(b"content-type", b"application/json")], [b'{"id":"msg_1"}'])


def answer(status: int, *headers: tuple[bytes, bytes]) -> ScriptedResponse:
    return ScriptedResponse(status, list(headers), [b'{"type":"error"}'])


@pytest.mark.parametrize(
    "failure",
    [UpstreamUnavailable("connection refused"), UpstreamTimeout("no answer")],
    ids=["connection error", "timeout"],
)
async def test_a_failed_attempt_is_retried_after_a_backoff(failure: Exception) -> None:
    upstream = ScriptedUpstream(failure, ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request())
    assert response.status == 200
    assert upstream.calls == 2
    # Equal jitter from 0.5 s: with jitter 0 the first wait is half the ceiling, never zero.
    assert sleep.waits == [0.25]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
async def test_a_5xx_or_529_answer_is_closed_and_retried(status: int) -> None:
    failed = answer(status)
    upstream = ScriptedUpstream(failed, ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request())
    assert response.status == 200
    assert failed.closed, "the connection of the answer thrown away is released"
    assert not upstream.responses[-1].closed
    assert len(sleep.waits) == 1


async def test_every_attempt_sends_the_same_request() -> None:
    upstream = ScriptedUpstream(answer(529), UpstreamUnavailable("reset"), ok())
    sut, _, _ = retrying(upstream)
    request = messages_request(b'{"model":"claude","messages":[{"role":"user","content":"hi"}]}')
    await sut.send(request)
    assert upstream.requests == [request, request, request]
    assert upstream.bodies == [request.body] * 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 429])
async def test_a_4xx_answer_is_relayed_at_once(status: int) -> None:
    upstream = ScriptedUpstream(answer(status, (b"retry-after", b"1")), ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request())
    assert response.status == status
    assert not upstream.responses[0].closed, "the client reads this body"
    assert (upstream.calls, sleep.waits) == (1, [])


async def test_should_retry_false_makes_a_529_final() -> None:
    upstream = ScriptedUpstream(answer(529, (b"x-should-retry", b"false")), ok())
    sut, sleep, _ = retrying(upstream)
    assert (await sut.send(messages_request())).status == 529
    assert (upstream.calls, sleep.waits) == (1, [])


async def test_should_retry_true_makes_a_501_worth_another_try() -> None:
    upstream = ScriptedUpstream(answer(501, (b"x-should-retry", b"true")), ok())
    sut, _, _ = retrying(upstream)
    assert (await sut.send(messages_request())).status == 200
    assert upstream.calls == 2


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ((b"retry-after", b"3"), 3.0),
        ((b"retry-after", b"0"), 0.0),
        ((b"retry-after-ms", b"1500"), 1.5),
        ((b"retry-after", b"10"), 10.0),
    ],
)
async def test_a_short_retry_after_is_waited_instead_of_the_backoff(header: tuple[bytes, bytes], wait: float) -> None:
    upstream = ScriptedUpstream(answer(529, header), ok())
    sut, sleep, _ = retrying(upstream)
    assert (await sut.send(messages_request())).status == 200
    assert sleep.waits == [wait]


async def test_retry_after_ms_wins_over_retry_after() -> None:
    upstream = ScriptedUpstream(answer(503, (b"retry-after", b"9"), (b"retry-after-ms", b"250")), ok())
    sut, sleep, _ = retrying(upstream)
    await sut.send(messages_request())
    assert sleep.waits == [0.25]


async def test_a_retry_after_date_is_read_against_the_clock() -> None:
    clock_now_s = FixedClock().now_ms() / 1000
    date = email.utils.formatdate(clock_now_s + 4, usegmt=True).encode()
    upstream = ScriptedUpstream(answer(529, (b"retry-after", date)), ok())
    sut, sleep, _ = retrying(upstream)
    assert (await sut.send(messages_request())).status == 200
    assert sleep.waits == [pytest.approx(4.0, abs=1.0)]


@pytest.mark.parametrize("header", [(b"retry-after", b"11"), (b"retry-after", b"3600"), (b"retry-after-ms", b"60000")])
async def test_a_long_retry_after_relays_upstreams_answer_at_once(header: tuple[bytes, bytes]) -> None:
    upstream = ScriptedUpstream(answer(529, header), ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request())
    assert response.status == 529
    assert not upstream.responses[0].closed
    assert (upstream.calls, sleep.waits) == (1, [])


async def test_it_gives_up_after_the_configured_retries_and_relays_the_last_answer() -> None:
    upstream = ScriptedUpstream(answer(529))
    sut, sleep, _ = retrying(upstream, RetryPolicy(max_retries=3))
    response = await sut.send(messages_request())
    assert response.status == 529
    assert upstream.calls == 4
    assert [r.closed for r in upstream.responses] == [True, True, True, False]
    assert response is upstream.responses[-1]
    assert sleep.waits == [0.25, 0.5, 1.0]


async def test_it_gives_up_after_the_configured_retries_and_raises_the_last_error() -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("first"), UpstreamUnavailable("second"), UpstreamTimeout("last"))
    sut, sleep, _ = retrying(upstream, RetryPolicy(max_retries=2))
    with pytest.raises(UpstreamTimeout, match="last"):
        await sut.send(messages_request())
    assert upstream.calls == 3
    assert len(sleep.waits) == 2


async def test_the_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("down"))
    policy = RetryPolicy(max_retries=6, budget_s=1000.0, base_delay_s=0.5, max_delay_s=8.0)
    sut, sleep, _ = retrying(upstream, policy, jitter=0.5)
    with pytest.raises(UpstreamUnavailable):
        await sut.send(messages_request())
    # Ceilings 0.5, 1, 2, 4, 8, 8; equal jitter waits between half the ceiling and all of it.
    assert sleep.waits == [0.375, 0.75, 1.5, 3.0, 6.0, 6.0]


async def test_retries_stop_when_the_next_wait_would_overrun_the_budget() -> None:
    upstream = ScriptedUpstream(answer(529, (b"retry-after", b"4")))
    sut, sleep, clock = retrying(upstream, RetryPolicy(max_retries=5, budget_s=10.0))
    started = clock.monotonic()
    response = await sut.send(messages_request())
    assert response.status == 529
    assert sleep.waits == [4.0, 4.0], "a third wait of 4 s would end past the 10 s budget"
    assert upstream.calls == 3
    assert clock.monotonic() - started == 8.0


async def test_time_spent_in_slow_attempts_counts_against_the_budget() -> None:
    clock = FixedClock()
    sleep = RecordedSleep(clock)

    class SlowFailures(ScriptedUpstream):
        async def send(self, request: UpstreamRequest) -> ScriptedResponse:
            clock.advance(9.0)  # each attempt takes 9 s before failing
            return await super().send(request)

    upstream = SlowFailures(UpstreamTimeout("slow"))
    sut = RetryingUpstream(
        inner=upstream, policy=RetryPolicy(max_retries=5, budget_s=20.0), clock=clock, sleep=sleep, jitter=lambda: 0
    )
    with pytest.raises(UpstreamTimeout):
        await sut.send(messages_request())
    # Attempts end at 9 s and 18.25 s, each leaving room for a short wait; the third ends at
    # 27.5 s, past the budget, so no fourth attempt is made.
    assert upstream.calls == 3
    assert sleep.waits == [0.25, 0.5]


async def test_an_open_circuit_is_never_retried() -> None:
    upstream = ScriptedUpstream(UpstreamCircuitOpen("open", retry_after_s=30), ok())
    sut, sleep, _ = retrying(upstream)
    with pytest.raises(UpstreamCircuitOpen):
        await sut.send(messages_request())
    assert (upstream.calls, sleep.waits) == (1, [])


async def test_a_streamed_upload_is_never_replayed() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"part one,"
        yield b"part two"

    upstream = ScriptedUpstream(answer(529), ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request(upload()))
    assert response.status == 529
    assert upstream.bodies == [b"part one,part two"]
    assert sleep.waits == []


async def test_a_streamed_upload_that_cannot_connect_fails_at_once() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"file bytes"

    upstream = ScriptedUpstream(UpstreamUnavailable("refused"), ok())
    sut, _, _ = retrying(upstream)
    with pytest.raises(UpstreamUnavailable):
        await sut.send(messages_request(upload()))
    assert upstream.calls == 1


async def test_a_bodiless_request_is_retried() -> None:
    upstream = ScriptedUpstream(answer(502), ok())
    sut, _, _ = retrying(upstream)
    request = UpstreamRequest(method="GET", target="/v1/models?limit=5", headers=[], body=None)
    assert (await sut.send(request)).status == 200
    assert upstream.calls == 2


async def test_no_retries_configured_means_one_attempt() -> None:
    upstream = ScriptedUpstream(answer(529), ok())
    sut, sleep, _ = retrying(upstream, RetryPolicy(max_retries=0))
    assert (await sut.send(messages_request())).status == 529
    assert (upstream.calls, sleep.waits) == (1, [])


async def test_a_stream_that_breaks_off_after_the_headers_is_not_retried() -> None:
    broken = ScriptedResponse(200, [], [b"event: message_start\n\n"], fail_after=UpstreamUnavailable("reset"))
    upstream = ScriptedUpstream(broken, ok())
    sut, sleep, _ = retrying(upstream)
    response = await sut.send(messages_request())
    received = []
    with pytest.raises(UpstreamUnavailable):
        async for chunk in response.iter_raw():
            received.append(chunk)
    assert received == [b"event: message_start\n\n"]
    assert (upstream.calls, sleep.waits) == (1, [])
