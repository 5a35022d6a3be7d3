"""The live feed's fan-out, batching, bounded queues and reconnects, on a fake notification source."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from nexus.adapters.persistence.exchange_store import RECORDED_CHANNEL, recorded_payloads
from nexus.adapters.persistence.linking import LINKS_CHANNEL
from nexus.adapters.persistence.live_feed import SharedLiveFeed, Subscription
from nexus.application.ports.exchange_queries import QueriesUnavailable, RequestSummary
from nexus.application.ports.live_feed import LiveFeed, LiveUpdate


def summary(request_id: uuid.UUID) -> RequestSummary:
    return RequestSummary(
        request_id=request_id, timestamp=datetime(2026, 1, 1, tzinfo=UTC), domain="d", account_id=None,
        method="POST", path="/v1/messages", model="m", model_requested="m", request_type="inference", status=200,
        stream=False, state="complete", error=None, input_tokens=1, output_tokens=1, cache_creation_input_tokens=0,
        cache_read_input_tokens=0, cost_usd=None, duration_ms=1.0, first_token_ms=None, tool_call_count=0,
        conversation_id=None, branch_id=None, parent_request_id=None, is_subtask=False, parent_task_request_id=None,
    )  # fmt: skip


class FakeSource:
    """One fake connection at a time: ``notify`` plays PostgreSQL, ``lose``/``refuse`` an outage."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.refusing = False
        self._deliver: Callable[[str, str], None] | None = None
        self._lost = asyncio.Event()

    @asynccontextmanager
    async def listen(
        self, channels: Sequence[str], deliver: Callable[[str, str], None]
    ) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        assert set(channels) == {RECORDED_CHANNEL, LINKS_CHANNEL}
        if self.refusing:
            raise OSError("Connection refused")
        self.connections += 1
        self.open += 1
        self._deliver, self._lost = deliver, asyncio.Event()
        try:
            yield self._lost.wait
        finally:
            self.open -= 1
            self._deliver = None

    def notify(self, channel: str, payload: str) -> None:
        if self._deliver is not None:  # a notification sent while nobody listens is lost
            self._deliver(channel, payload)

    def recorded(self, *ids: uuid.UUID) -> None:
        for payload in recorded_payloads(ids):
            self.notify(RECORDED_CHANNEL, payload)

    def lose(self) -> None:
        self.refusing = True
        self._lost.set()


class FakeRows:
    """The read model: every id is stored; each query is remembered."""

    def __init__(self) -> None:
        self.queries: list[list[uuid.UUID]] = []
        self.failing = False

    async def __call__(self, ids: Sequence[uuid.UUID]) -> list[RequestSummary]:
        if self.failing:
            raise QueriesUnavailable("The database cannot be reached")
        self.queries.append(list(ids))
        return [summary(request_id) for request_id in ids]


def new_feed(**options: object) -> tuple[SharedLiveFeed, FakeSource, FakeRows]:
    source, rows = FakeSource(), FakeRows()
    options = {"batch_window_s": 0.02, "retry_delays_s": (0.01,), "ready_timeout_s": 0.5} | options
    return SharedLiveFeed(source, rows, **options), source, rows  # type: ignore[arg-type]


async def take(updates: AsyncIterator[LiveUpdate], within_s: float = 1.0) -> LiveUpdate:
    return await asyncio.wait_for(anext(updates), within_s)


def ids_of(update: LiveUpdate) -> list[uuid.UUID]:
    return [request.request_id for request in update.requests]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not within a second")


async def test_a_subscriber_is_told_the_state_then_receives_what_is_recorded() -> None:
    feed, source, _ = new_feed()
    assert isinstance(feed, LiveFeed)
    first, second = uuid.uuid4(), uuid.uuid4()
    async with feed.subscribe() as updates:
        assert await take(updates) == LiveUpdate(live=True)
        source.recorded(first, second)
        update = await take(updates)
    assert ids_of(update) == [first, second]
    assert (update.gap, update.links_changed, update.live) == (False, False, True)


async def test_ids_heard_within_the_window_are_read_in_one_query() -> None:
    feed, source, rows = new_feed(batch_window_s=0.05)
    batch = [uuid.uuid4() for _ in range(5)]
    async with feed.subscribe() as updates:
        await take(updates)
        for request_id in batch:
            source.recorded(request_id)
            await asyncio.sleep(0.005)
        assert ids_of(await take(updates)) == batch
        later = uuid.uuid4()
        source.recorded(later)
        assert ids_of(await take(updates)) == [later]
    assert rows.queries == [batch, [later]]


async def test_a_large_batch_is_read_in_bounded_queries() -> None:
    feed, source, rows = new_feed(max_ids_per_query=100)
    batch = [uuid.uuid4() for _ in range(250)]
    async with feed.subscribe() as updates:
        await take(updates)
        source.recorded(*batch)
        received = [*ids_of(await take(updates)), *ids_of(await take(updates)), *ids_of(await take(updates))]
    assert received == batch
    assert [len(query) for query in rows.queries] == [100, 100, 50]


async def test_every_subscriber_receives_every_update_from_one_connection() -> None:
    feed, source, _ = new_feed()
    request_id = uuid.uuid4()
    async with feed.subscribe() as one, feed.subscribe() as two, feed.subscribe() as three:
        for updates in (one, two, three):
            await take(updates)
        source.recorded(request_id)
        for updates in (one, two, three):
            assert ids_of(await take(updates)) == [request_id]
        assert (source.connections, feed.subscribers) == (1, 3)


async def test_the_listener_starts_with_the_first_subscriber_and_stops_after_the_last() -> None:
    feed, source, _ = new_feed()
    assert not feed.listening
    async with feed.subscribe():
        assert (feed.listening, source.open) == (True, 1)
        async with feed.subscribe():
            pass
        assert (feed.listening, source.open) == (True, 1), "one subscriber is still there"
    assert not feed.listening
    await until(lambda: source.open == 0)
    async with feed.subscribe():
        assert source.connections == 2, "the next subscriber starts it again"
    await feed.close()
    assert source.open == 0


async def test_a_slow_subscriber_loses_its_oldest_updates_and_is_told_without_holding_back_others() -> None:
    feed, source, _ = new_feed(queue_items=10, batch_window_s=0)
    sent = [uuid.uuid4() for _ in range(100)]
    async with feed.subscribe() as fast, feed.subscribe() as slow:
        await take(fast)
        for request_id in sent:
            source.recorded(request_id)
            assert ids_of(await take(fast)) == [request_id]
        assert slow.queued == (10, 10)
        late = [await take(slow) for _ in range(10)]
    assert late[0].gap, "the first update after the loss says so"
    assert not any(update.gap for update in late[1:])
    assert [ids_of(update)[0] for update in late] == sent[-10:], "the newest are kept"


def test_a_queue_is_bounded_by_the_requests_it_holds_too() -> None:
    subscription = Subscription(max_items=100, max_requests=50)
    for _ in range(10):
        subscription.put(LiveUpdate(requests=[summary(uuid.uuid4()) for _ in range(20)]))
    assert subscription.queued == (2, 40)
    assert subscription.dropped == 8
    one_big = Subscription(max_items=100, max_requests=5)
    one_big.put(LiveUpdate(requests=[summary(uuid.uuid4()) for _ in range(20)]))
    assert one_big.queued == (1, 20), "the newest update is always kept"


async def test_links_changed_by_the_linker_are_passed_on() -> None:
    feed, source, _ = new_feed()
    request_id = uuid.uuid4()
    async with feed.subscribe() as updates:
        await take(updates)
        source.notify(LINKS_CHANNEL, "")
        assert await take(updates) == LiveUpdate(links_changed=True)
        source.recorded(request_id)
        source.notify(LINKS_CHANNEL, "")
        update = await take(updates)
    assert (ids_of(update), update.links_changed) == ([request_id], True)


async def test_subscribers_stay_through_an_outage_and_hear_again_once_the_database_is_back() -> None:
    feed, source, _ = new_feed()
    before, after = uuid.uuid4(), uuid.uuid4()
    async with feed.subscribe() as updates:
        await take(updates)
        source.recorded(before)
        assert ids_of(await take(updates)) == [before]

        source.lose()
        assert await take(updates) == LiveUpdate(live=False)
        await asyncio.sleep(0.05)  # several refused attempts
        source.refusing = False
        assert await take(updates) == LiveUpdate(live=True, gap=True), "what was stored meanwhile was not heard"
        source.recorded(after)
        assert ids_of(await take(updates)) == [after]
    assert source.connections == 2


async def test_a_subscriber_is_not_kept_waiting_when_the_database_is_away() -> None:
    feed, source, _ = new_feed()
    source.refusing = True
    async with feed.subscribe() as updates:
        assert await take(updates) == LiveUpdate(live=False)
        source.refusing = False
        assert await take(updates) == LiveUpdate(live=True, gap=True)


async def test_requests_that_cannot_be_read_become_a_gap() -> None:
    feed, source, rows = new_feed()
    async with feed.subscribe() as updates:
        await take(updates)
        rows.failing = True
        source.recorded(uuid.uuid4())
        assert await take(updates) == LiveUpdate(gap=True)
        rows.failing = False
        request_id = uuid.uuid4()
        source.recorded(request_id)
        assert ids_of(await take(updates)) == [request_id]


async def test_ids_beyond_the_pending_bound_become_a_gap_and_bad_payloads_are_ignored() -> None:
    feed, source, _ = new_feed(max_pending_ids=3)
    batch = [uuid.uuid4() for _ in range(5)]
    async with feed.subscribe() as updates:
        await take(updates)
        source.notify(RECORDED_CHANNEL, "not-a-uuid")
        source.recorded(*batch)
        update = await take(updates)
    assert ids_of(update) == batch[:3]
    assert update.gap


async def test_closing_ends_every_subscription_and_later_ones_at_once() -> None:
    feed, source, _ = new_feed()
    async with feed.subscribe() as updates:
        await take(updates)
        await feed.close()
        assert [update async for update in updates] == []
        assert source.open == 0
    async with feed.subscribe() as updates:
        assert [update async for update in updates] == []
    assert source.connections == 1


async def test_waiting_for_an_update_can_be_cancelled_without_losing_it() -> None:
    feed, source, _ = new_feed()
    request_id = uuid.uuid4()
    async with feed.subscribe() as updates:
        await take(updates)
        with pytest.raises(TimeoutError):
            await take(updates, within_s=0.05)
        source.recorded(request_id)
        assert ids_of(await take(updates)) == [request_id]


def test_recorded_payloads_stay_under_the_notification_limit() -> None:
    ids = [uuid.uuid4() for _ in range(1001)]
    payloads = recorded_payloads(ids)
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [uuid.UUID(text) for payload in payloads for text in payload.split(",")] == ids
    assert recorded_payloads([]) == []
