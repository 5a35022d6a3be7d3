"""The live feed on PostgreSQL ``LISTEN``: one listening connection per process, for all subscribers.

The recorder notifies ``nexus_recorded`` with the ids of every batch it stores, and the linker
notifies ``nexus_links`` when it links rows; both are delivered at commit to every listening
process, whichever process stored. While anyone subscribes, one connection of the process
listens on both channels: the first subscriber opens it, the last one to leave closes it (and
so does shutdown). Ids that arrive within ``batch_window_s`` of each other are read back in one
query and the summaries are fanned out to every subscriber's queue. The queues are bounded: a
subscriber that falls behind (a slow browser) loses its oldest items and is told so (``gap``),
so it never grows memory nor holds back the others. When the database goes away the connection
is replaced with backoff; subscribers stay, are told (``live``), and receive items again once
it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.db_errors import describe
from nexus.adapters.persistence.exchange_queries import SqlAlchemyExchangeQueries
from nexus.adapters.persistence.exchange_store import RECORDED_CHANNEL
from nexus.adapters.persistence.linking import LINKS_CHANNEL
from nexus.application.ports.exchange_queries import RequestSummary
from nexus.application.ports.live_feed import LiveUpdate

log = logging.getLogger(__name__)

CHANNELS = (RECORDED_CHANNEL, LINKS_CHANNEL)
BATCH_WINDOW_S = 0.05
MAX_IDS_PER_QUERY = 500
MAX_PENDING_IDS = 20_000  # ids heard but not yet read (the database slow to answer); beyond, a gap
QUEUE_ITEMS = 256
QUEUE_REQUESTS = 2_000
READY_TIMEOUT_S = 3.0
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
HEARTBEAT_S = 10.0
HEARTBEAT_TIMEOUT_S = 5.0

Deliver = Callable[[str, str], None]
Summaries = Callable[[Sequence[uuid.UUID]], Awaitable[list[RequestSummary]]]
UntilLost = Callable[[], Awaitable[None]]


class NotificationSource(Protocol):
    """Notifications from one database connection at a time."""

    def listen(self, channels: Sequence[str], deliver: Deliver) -> AbstractAsyncContextManager[UntilLost]:
        """Listen on ``channels`` while the body runs, calling ``deliver(channel, payload)`` for
        each notification. Entering raises when the database cannot be reached; the value
        entered returns (when awaited) once the connection is lost."""
        ...


class Subscription:
    """One subscriber's queue: an ``AsyncIterator[LiveUpdate]`` holding at most ``max_items``
    items and ``max_requests`` request summaries (the newest item is always kept)."""

    def __init__(self, *, max_items: int = QUEUE_ITEMS, max_requests: int = QUEUE_REQUESTS) -> None:
        self._items: deque[LiveUpdate] = deque()
        self._requests = 0
        self._max_items = max_items
        self._max_requests = max_requests
        self._gap = False
        self._closed = False
        self._changed = asyncio.Event()
        self.dropped = 0

    @property
    def queued(self) -> tuple[int, int]:
        """Items and request summaries waiting."""
        return len(self._items), self._requests

    def put(self, update: LiveUpdate) -> None:
        if self._closed:
            return
        self._items.append(update)
        self._requests += len(update.requests)
        while len(self._items) > 1 and (len(self._items) > self._max_items or self._requests > self._max_requests):
            self._requests -= len(self._items.popleft().requests)
            self.dropped += 1
            self._gap = True
        self._changed.set()

    def close(self) -> None:
        """End the iteration (what is still queued is dropped)."""
        self._closed = True
        self._items.clear()
        self._requests = 0
        self._changed.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LiveUpdate:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._changed.clear()
            await self._changed.wait()
        update = self._items.popleft()
        self._requests -= len(update.requests)
        if self._gap:
            self._gap = False
            update = msgspec.structs.replace(update, gap=True)
        return update


class SharedLiveFeed:
    """``LiveFeed``: one listener shared by all subscribers, running while anyone subscribes."""

    def __init__(
        self,
        source: NotificationSource,
        summaries: Summaries,
        *,
        batch_window_s: float = BATCH_WINDOW_S,
        max_ids_per_query: int = MAX_IDS_PER_QUERY,
        max_pending_ids: int = MAX_PENDING_IDS,
        queue_items: int = QUEUE_ITEMS,
        queue_requests: int = QUEUE_REQUESTS,
        ready_timeout_s: float = READY_TIMEOUT_S,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        self.source = source
        self.summaries = summaries
        self.batch_window_s = batch_window_s
        self.max_ids_per_query = max_ids_per_query
        self.max_pending_ids = max_pending_ids
        self.retry_delays_s = tuple(retry_delays_s)
        self._queue_items = queue_items
        self._queue_requests = queue_requests
        self._ready_timeout_s = ready_timeout_s
        self._subscribers: set[Subscription] = set()
        self._users = 0
        self._listener: _Listener | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def listening(self) -> bool:
        """Whether the listener runs (someone subscribes)."""
        return self._listener is not None

    @property
    def live(self) -> bool:
        """Whether the listener hears the database now."""
        return self._listener is not None and self._listener.live

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(max_items=self._queue_items, max_requests=self._queue_requests)
        if self._closed:
            subscription.close()
            yield subscription
            return
        self._users += 1
        try:
            if self._listener is None:
                self._listener = _Listener(self)
            listener = self._listener
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.settled.wait(), self._ready_timeout_s)
            if self.closed:  # while waiting
                subscription.close()
            else:
                subscription.put(LiveUpdate(live=listener.live))
                self._subscribers.add(subscription)
            yield subscription
        finally:
            self._subscribers.discard(subscription)
            subscription.close()
            self._users -= 1
            if self._users == 0:
                self._stop()

    async def close(self) -> None:
        """Stop listening and end every subscription; later subscriptions end at once."""
        self._closed = True
        for subscription in self._subscribers:
            subscription.close()
        self._subscribers.clear()
        self._stop()
        await asyncio.gather(*self._stopping, return_exceptions=True)

    def publish(self, listener: _Listener, update: LiveUpdate) -> None:
        if listener is self._listener:
            for subscription in self._subscribers:
                subscription.put(update)

    def _stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # Not awaited here: a leaving subscriber may itself be cancelled; close() awaits.
            listener.task.cancel()
            self._stopping.add(listener.task)
            listener.task.add_done_callback(self._stopping.discard)


class _Listener:
    """One run of the listening connection, from the first subscriber until the last leaves:
    a task that (re)connects and a task that reads the rows of the ids heard."""

    def __init__(self, feed: SharedLiveFeed) -> None:
        self._feed = feed
        self.settled = asyncio.Event()  # the first attempt to listen has succeeded or failed
        self.live = False
        self._pending: dict[uuid.UUID, None] = {}
        self._overflowed = False
        self._links = False
        self._heard = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name="live-feed")

    async def _run(self) -> None:
        reader = asyncio.create_task(self._read(), name="live-feed-reader")
        try:
            await self._listen()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with self._feed.source.listen(CHANNELS, self._deliver) as until_lost:
                    if failures:
                        log.info("Live feed listening again")
                    failures = 0
                    self._set_live(True)
                    await until_lost()
                log.warning("Live feed lost its database connection; reconnecting")
            except Exception as exc:  # noqa: BLE001 -- the feed outlives any database failure
                if failures == 0:
                    log.warning("Live feed paused: the database is unreachable (%s)", describe(exc))
            failures += 1
            self._set_live(False)
            delays = self._feed.retry_delays_s
            await asyncio.sleep(delays[min(failures, len(delays)) - 1])

    def _set_live(self, live: bool) -> None:
        changed = live != self.live
        self.live = live
        self.settled.set()
        if changed:
            # Back after a loss: what was stored meanwhile was not heard.
            self._feed.publish(self, LiveUpdate(live=live, gap=live))

    def _deliver(self, channel: str, payload: str) -> None:
        if channel == RECORDED_CHANNEL:
            for text in payload.split(","):
                if len(self._pending) >= self._feed.max_pending_ids:
                    self._overflowed = True
                    break
                with contextlib.suppress(ValueError):
                    self._pending[uuid.UUID(text)] = None
        elif channel == LINKS_CHANNEL:
            self._links = True
        else:
            return
        self._heard.set()

    async def _read(self) -> None:
        """Wait for ids, let more come for ``batch_window_s``, read their rows, fan them out."""
        while True:
            await self._heard.wait()
            await asyncio.sleep(self._feed.batch_window_s)
            self._heard.clear()
            ids, self._pending = list(self._pending), {}
            links, self._links = self._links, False
            gap, self._overflowed = self._overflowed, False
            step = self._feed.max_ids_per_query
            for start in range(0, len(ids) or 1, step):
                chunk = ids[start : start + step]
                try:
                    requests = await self._feed.summaries(chunk) if chunk else []
                except Exception as exc:  # noqa: BLE001 -- subscribers are told to reload instead
                    log.warning("Live feed could not read %d recorded requests (%s)", len(ids), describe(exc))
                    self._feed.publish(self, LiveUpdate(gap=True, live=self.live))
                    break
                if requests or links or gap:
                    self._feed.publish(
                        self, LiveUpdate(requests=requests, links_changed=links, gap=gap, live=self.live)
                    )
                    links = gap = False


class PgNotifications:
    """``NotificationSource`` on a connection of the engine's pool, held while listening (the
    linker's technique: ``LISTEN`` on the raw asyncpg connection). A heartbeat notices a
    connection that went away silently; the connection is discarded afterwards, never returned
    to the pool still listening."""

    def __init__(
        self, engine: AsyncEngine, *, heartbeat_s: float = HEARTBEAT_S, heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S
    ) -> None:
        self._engine = engine
        self._heartbeat_s = heartbeat_s
        self._heartbeat_timeout_s = heartbeat_timeout_s

    @asynccontextmanager
    async def listen(self, channels: Sequence[str], deliver: Deliver) -> AsyncIterator[UntilLost]:
        async with self._engine.connect() as connection:
            try:
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                lost = asyncio.Event()

                def notified(_connection: object, _pid: int, channel: str, payload: str) -> None:
                    deliver(channel, payload)

                driver.add_termination_listener(lambda _connection: lost.set())
                for channel in channels:
                    await driver.add_listener(channel, notified)
                yield lambda: self._until_lost(driver, lost)
            finally:
                await connection.invalidate()  # closed at once: no listener goes back to the pool

    async def _until_lost(self, driver: Any, lost: asyncio.Event) -> None:
        while not driver.is_closed():
            try:
                await asyncio.wait_for(lost.wait(), self._heartbeat_s)
            except TimeoutError:
                try:
                    await asyncio.wait_for(driver.fetchval("SELECT 1"), self._heartbeat_timeout_s)
                except Exception:  # noqa: BLE001 -- whatever the failure, the connection is replaced
                    return
            else:
                return


def postgres_live_feed(engine: AsyncEngine, **options: Any) -> SharedLiveFeed:
    """The feed of one process on ``engine``; ``options`` as for ``SharedLiveFeed``."""
    return SharedLiveFeed(PgNotifications(engine), SqlAlchemyExchangeQueries(engine).summaries_by_ids, **options)


async def live_feed_lifetime(engine: AsyncEngine | None) -> AsyncIterator[SharedLiveFeed | None]:
    """The process's live feed while the app runs (None when storage is off); closed at shutdown,
    which ends every subscription."""
    if engine is None:
        yield None
        return
    feed = postgres_live_feed(engine)
    try:
        yield feed
    finally:
        await feed.close()
