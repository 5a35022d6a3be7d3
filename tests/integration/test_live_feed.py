"""The live feed on a real PostgreSQL: rows stored by any process reach every subscriber at once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.linking import sql_link_work
from nexus.adapters.persistence.live_feed import SharedLiveFeed, live_feed_lifetime, postgres_live_feed
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.exchange import Exchange
from nexus.application.linking.run import link_pending
from nexus.application.ports.live_feed import LiveFeed, LiveUpdate
from nexus.application.recording.row import build_row
from tests.support.database import stop_postgres
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

T0 = 1_790_000_000_000  # ms
SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]


def exchange(text: str = "Hello", *, at_ms: int = T0) -> Exchange:
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": text}],
    }
    response = {
        "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }  # fmt: skip
    return Exchange(
        request_id=str(uuid.uuid4()), method="POST", path="/v1/messages", query_string=b"", domain="team.example",
        requested_model="claude-sonnet-5", request_headers=[(b"content-type", b"application/json")],
        request_body=json.dumps(body).encode(), status=200, response_headers=[(b"content-type", b"application/json")],
        response_chunks=[json.dumps(response).encode()], started_at_ms=at_ms, duration_s=0.5,
    )  # fmt: skip


async def store(engine: AsyncEngine, count: int = 1) -> list[uuid.UUID]:
    """Store ``count`` exchanges in one batch, as the recorder does; their ids."""
    rows = [build_row(exchange(f"question {n}", at_ms=T0 + n), store_bodies=True) for n in range(count)]
    await SqlAlchemyExchangeStore(engine).store(rows)
    return [row.id for row in rows]


async def take(updates: AsyncIterator[LiveUpdate], within_s: float = 1.0) -> LiveUpdate:
    return await asyncio.wait_for(anext(updates), within_s)


async def requests_until(
    updates: AsyncIterator[LiveUpdate], wanted: list[uuid.UUID], within_s: float = 1.0
) -> list[LiveUpdate]:
    """The updates received until every wanted id came (failing after ``within_s``)."""
    received: list[LiveUpdate] = []
    seen: set[uuid.UUID] = set()
    async with asyncio.timeout(within_s):
        while not set(wanted) <= seen:
            update = await anext(updates)
            received.append(update)
            seen.update(request.request_id for request in update.requests)
    return received


def ids(updates: list[LiveUpdate]) -> list[uuid.UUID]:
    return [request.request_id for update in updates for request in update.requests]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_engine(database_url) as opened:
        await upgrade(opened)
        yield opened


@pytest.fixture
async def feed(engine: AsyncEngine) -> AsyncIterator[SharedLiveFeed]:
    opened = postgres_live_feed(engine)
    try:
        yield opened
    finally:
        await opened.close()


async def listening_backends(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )
        )
    finally:
        await connection.close()


async def test_a_subscriber_receives_what_is_stored_within_a_second(engine: AsyncEngine, feed: SharedLiveFeed) -> None:
    assert isinstance(feed, LiveFeed)
    async with feed.subscribe() as updates:
        assert await take(updates) == LiveUpdate(live=True)
        stored = await store(engine, 3)
        committed = time.monotonic()
        received = await requests_until(updates, stored)
        latency = time.monotonic() - committed
    assert ids(received) == stored, "oldest first"
    assert latency < 1.0
    first = received[0].requests[0]
    assert (first.path, first.model, first.status, first.input_tokens, first.domain) == (
        "/v1/messages", "claude-sonnet-5", 200, 10, "team.example",
    )  # fmt: skip


async def test_every_subscriber_receives_every_row_from_one_listening_connection(
    engine: AsyncEngine, feed: SharedLiveFeed, database_url: str
) -> None:
    async with feed.subscribe() as one, feed.subscribe() as two:
        await take(one)
        await take(two)
        assert await listening_backends(database_url) == 1
        stored = await store(engine, 2)
        assert ids(await requests_until(one, stored)) == stored
        assert ids(await requests_until(two, stored)) == stored


async def test_rows_stored_by_another_process_are_heard(database_url: str, feed: SharedLiveFeed) -> None:
    async with feed.subscribe() as updates, open_engine(database_url) as elsewhere:
        await take(updates)
        stored = await store(elsewhere, 250)  # two notifications: a payload holds 200 ids
        assert ids(await requests_until(updates, stored)) == stored


async def test_requests_through_a_proxy_appear_within_a_second_of_completing(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, feed: SharedLiveFeed
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url)
    body = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    async with feed.subscribe() as updates, httpx.AsyncClient() as client:
        await take(updates)
        for _ in range(3):
            response = await client.post(f"{proxy.url}/v1/messages", json=body, headers=headers)
            completed = time.monotonic()
            assert response.status_code == 200
            request_id = uuid.UUID(response.headers["x-request-id"])
            assert ids(await requests_until(updates, [request_id])) == [request_id]
            assert time.monotonic() - completed < 1.0


async def test_linking_is_announced(engine: AsyncEngine, feed: SharedLiveFeed) -> None:
    async with feed.subscribe() as updates:
        await take(updates)
        stored = await store(engine)
        await requests_until(updates, stored)
        counts = await link_pending(lambda: sql_link_work(engine))
        assert counts.linked == 1
        assert (await take(updates)).links_changed


async def test_a_slow_subscriber_keeps_a_bounded_queue_and_holds_no_one_back(engine: AsyncEngine) -> None:
    feed = postgres_live_feed(engine, queue_requests=10)
    try:
        async with feed.subscribe() as fast, feed.subscribe() as slow:
            await take(fast)
            stored: list[uuid.UUID] = []
            for _ in range(10):
                batch = await store(engine, 5)
                assert ids(await requests_until(fast, batch)) == batch
                stored += batch
            assert slow.queued == (2, 10), "the two newest batches"
            late = [await take(slow), await take(slow)]
        assert late[0].gap
        assert ids(late) == stored[-10:]
    finally:
        await feed.close()


async def test_the_listening_connection_lives_while_someone_subscribes(
    engine: AsyncEngine, feed: SharedLiveFeed, database_url: str
) -> None:
    assert await listening_backends(database_url) == 0, "nothing listens before the first subscriber"
    async with feed.subscribe() as updates:
        await take(updates)
        assert await listening_backends(database_url) == 1
    assert not feed.listening
    for _ in range(100):  # the connection closes in the background
        if await listening_backends(database_url) == 0:
            break
        await asyncio.sleep(0.05)
    assert await listening_backends(database_url) == 0
    async with feed.subscribe() as updates:
        await take(updates)
        stored = await store(engine)
        assert ids(await requests_until(updates, stored)) == stored, "a new subscriber listens again"


async def test_subscribers_stay_connected_through_a_database_restart(own_postgres: Any) -> None:
    url = own_postgres.get_uri()
    async with open_engine(url) as engine:
        await upgrade(engine)
        feed = postgres_live_feed(engine)
        try:
            async with feed.subscribe() as updates:
                assert await take(updates) == LiveUpdate(live=True)
                before = await store(engine)
                assert ids(await requests_until(updates, before)) == before

                await asyncio.to_thread(stop_postgres, own_postgres)
                assert await take(updates, within_s=5) == LiveUpdate(live=False)
                await asyncio.to_thread(own_postgres.ensure_postgres_running)
                assert await take(updates, within_s=15) == LiveUpdate(live=True, gap=True)

                after = await store(engine, 2)
                assert ids(await requests_until(updates, after)) == after
        finally:
            await feed.close()


async def test_the_lifetime_yields_nothing_without_storage_and_ends_subscriptions_at_shutdown(
    engine: AsyncEngine,
) -> None:
    async for nothing in live_feed_lifetime(None):
        assert nothing is None
    lifetime = live_feed_lifetime(engine)
    feed = await anext(lifetime)
    assert feed is not None
    async with feed.subscribe() as updates:
        await take(updates)
        with pytest.raises(StopAsyncIteration):
            await anext(lifetime)  # shutdown
        assert [update async for update in updates] == []
