"""The recorder: finished exchanges into the store, in batches, never in the proxy's way."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator

from nexus.application.exchange import Exchange
from nexus.application.ports.exchange_store import (
    ExchangeJournal,
    ExchangeQuarantine,
    ExchangeStore,
    StoreRejected,
    StoreUnavailable,
    WriteAhead,
)
from nexus.application.recording.row import ExchangeRow, build_row
from nexus.domain.conversation.threading import ThreadRule

log = logging.getLogger(__name__)
_MAX_KNOWN_PARTS = 100_000  # about 13 MB of digests

_MAX_UNHEARD = 100_000


class ExchangeRecorder:
    """Takes each finished exchange from the proxy (``observe``) and stores it.

    Rules:
    - ``observe`` only enqueues: the proxy never waits for the database.
    - A background task takes batches of up to ``batch_size`` and stores them in one transaction.
    - When the store is unavailable, batches go to the journal (so memory stays bounded) and the
      recorder retries with backoff; once the store answers, the journal is replayed, oldest first.
      Rows are keyed by ``(ts, id)`` and stored idempotently: a replay never duplicates.
    - When the store rejects a batch (it refuses a value one row holds), the batch is halved
      until the rows it takes are stored and the row it refuses alone is found; that exchange
      goes to the quarantine with the reason, and is never retried by the recorder. So one bad
      row costs no good one, and a journal holding it is replayed once, not forever. An exchange
      whose row cannot even be built is quarantined the same way.
    - When the queue is full (``queue_size`` exchanges or ``queue_bytes`` of bodies), ``observe``
      writes to the journal directly; that journal is
      replayed as soon as the recorder has caught up with the queue.
    - On shutdown the queue is stored, or journaled if the store is down.
    - With a write-ahead log, every exchange is written to it (``write_ahead`` before the client
      has its last byte, or ``observe`` at the latest) and settled once stored, quarantined or
      journaled; what a killed process leaves there is replayed by the next, like the journal.
    - ``on_row`` (optional) hears every row built from an exchange of this process exactly once,
      whether or not the store takes it (token counters feed on it). Exchanges spilled to the
      journal unbuilt are handed to it when they are built: at once in the background task, or
      on replay for those a full queue sent straight to the journal. Replayed exchanges of
      other (or earlier) processes are not handed to it.
    """

    needs_response_body = True  # usage, cost and the stored response come from it

    def __init__(
        self,
        *,
        store: ExchangeStore,
        journal: ExchangeJournal,
        quarantine: ExchangeQuarantine,
        store_bodies: bool,
        queue_size: int = 10_000,
        queue_bytes: int = 32 * 1024 * 1024,
        batch_size: int = 500,
        retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0),
        linger_s: float = 0.02,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_row: Callable[[ExchangeRow], None] | None = None,
        write_ahead: WriteAhead | None = None,
        fsync_interval_s: float = 0.0,
        thread_rule: ThreadRule = "any_client",
    ) -> None:
        self._store = store
        self._thread_rule: ThreadRule = thread_rule
        self._journal = journal
        self._quarantine = quarantine
        self._store_bodies = store_bodies
        self._queue: asyncio.Queue[Exchange] = asyncio.Queue(maxsize=queue_size)
        # Bodies make exchanges of very different sizes: memory is bounded in bytes too.
        self._queue_bytes_limit = queue_bytes
        self._queued_bytes = 0
        self._batch_size = batch_size
        self._retry_delays = retry_delays_s
        self._linger_s = linger_s
        self._sleep = sleep
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        self._on_row = on_row
        self._wal = write_ahead
        self._fsync_interval_s = fsync_interval_s
        self._syncs: asyncio.Task[None] | None = None
        # Write-ahead marks by ``id(exchange)``: an exchange is alive (queued, or being
        # answered) for as long as its mark is here.
        self._marks: dict[int, object | None] = {}
        # Digests of body parts this process stored (oldest first, bounded): see build_row.
        self._known_parts: dict[bytes, None] = {}
        # Ids of exchanges journaled by ``observe`` before ``on_row`` heard of them (bounded).
        self._unheard: set[str] = set()
        self._overflowed = False  # the queue spilled to the journal: replay once caught up
        self._replaying = asyncio.Lock()
        self.stored = 0
        self.journaled = 0
        self.quarantined = 0

    def write_ahead(self, exchange: Exchange) -> None:
        """Called by the proxy before the client's last byte: from here on a crash loses nothing."""
        if self._wal is not None and id(exchange) not in self._marks:
            self._marks[id(exchange)] = self._wal.append(exchange)

    def observe(self, exchange: Exchange) -> None:
        self.write_ahead(exchange)  # a no-op when the proxy did it already
        size = _size(exchange)
        try:
            if self._queued_bytes + size > self._queue_bytes_limit and not self._queue.empty():
                raise asyncio.QueueFull
            self._queue.put_nowait(exchange)
            self._queued_bytes += size
        except asyncio.QueueFull:
            self._journal.append([exchange])
            self.journaled += 1
            self._settle([exchange])
            self._overflowed = True
            if self._on_row is not None and len(self._unheard) < _MAX_UNHEARD:
                with contextlib.suppress(ValueError):  # a row is never built for a non-UUID id
                    self._unheard.add(str(uuid.UUID(exchange.request_id)))  # as ``str(row.id)`` spells it

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="exchange-recorder")
        if self._wal is not None and self._fsync_interval_s > 0:
            self._syncs = asyncio.create_task(self._wal.sync_forever(self._fsync_interval_s), name="write-ahead-fsync")

    async def stop(self) -> None:
        """Store (or journal) everything still queued, then end the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._syncs is not None:
            self._syncs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncs
            self._syncs = None
        while not self._queue.empty():
            batch = self._take_now(self._batch_size)
            if unstored := await self._store_batch(batch, fresh=True):
                self._journal.append(unstored)
                self.journaled += len(unstored)
            self._settle(batch)
        self._journal.close()
        if self._wal is not None:
            self._wal.close()

    async def _run(self) -> None:
        await self.replay_journal()
        while True:
            batch = [self._dequeued(await self._queue.get())]
            if self._queue.qsize() < self._batch_size - 1 and self._linger_s:
                # Light traffic: gather what arrives shortly after, so one transaction (and its
                # fixed cost on this event loop) serves many exchanges instead of each one.
                await self._sleep(self._linger_s)
            batch.extend(self._take_now(self._batch_size - 1))
            unstored = await self._store_batch(batch, fresh=True)
            if unstored:
                self._journal.append(unstored)
                self.journaled += len(unstored)
            self._settle(batch)
            if not unstored:
                caught_up = self._queue.qsize() < self._batch_size
                if self._failures or (self._overflowed and caught_up):
                    self._failures = 0
                    self._overflowed = False
                    await self.replay_journal()
                continue
            await self._back_off()

    def _settle(self, exchanges: list[Exchange]) -> None:
        """The exchanges are stored, quarantined or journaled: the write-ahead log may let go."""
        if self._wal is not None:
            for exchange in exchanges:
                self._wal.settle(self._marks.pop(id(exchange), None))

    def _dequeued(self, exchange: Exchange) -> Exchange:
        self._queued_bytes -= _size(exchange)
        return exchange

    def _take_now(self, limit: int) -> list[Exchange]:
        batch: list[Exchange] = []
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._dequeued(self._queue.get_nowait()))
        return batch

    async def _store_batch(self, batch: list[Exchange], *, fresh: bool = False) -> list[Exchange]:
        """Store a batch; what is returned was left unstored because the store is unavailable
        (empty when every exchange was stored or quarantined). ``fresh`` batches come from the
        queue and were never built before."""
        rows = await self._rows(batch)
        self._tell(rows, fresh=fresh)
        by_id = _by_id(batch)
        return [by_id[row.id] for row in await self._put(rows, by_id)]

    async def _put(self, rows: list[ExchangeRow], exchanges: dict[uuid.UUID, Exchange]) -> list[ExchangeRow]:
        """Store rows, halving a rejected batch down to the row to blame; returns the rows left
        unstored because the store became unavailable (that one and every one after it)."""
        if not rows:
            return []
        try:
            await self._store.store(rows)
        except StoreUnavailable as exc:
            if self._failures == 0:
                log.warning("Recorder cannot reach the database (%s); journaling until it returns", exc)
            self._failures += 1
            return rows
        except StoreRejected as exc:
            if len(rows) == 1:
                self._put_aside(exchanges[rows[0].id], refused_reason(exc))
                return []
            half = len(rows) // 2
            unstored = await self._put(rows[:half], exchanges)
            if unstored:
                return unstored + rows[half:]
            return await self._put(rows[half:], exchanges)
        self.stored += len(rows)
        self._remember_parts(rows)
        return []

    def _put_aside(self, exchange: Exchange, reason: str) -> None:
        try:
            self._quarantine.put(exchange, reason)
        except OSError as exc:
            log.error("Exchange %s is lost: %s, and it cannot be quarantined (%s)", exchange.request_id, reason, exc)
            return
        self.quarantined += 1
        log.error("Exchange %s is quarantined: %s", exchange.request_id, reason)

    async def _rows(self, batch: list[Exchange], *, store_bodies: bool | None = None) -> list[ExchangeRow]:
        keep_bodies = self._store_bodies if store_bodies is None else store_bodies
        rows = []
        for exchange in batch:
            try:
                rows.append(
                    build_row(
                        exchange, store_bodies=keep_bodies, known_parts=self._known_parts, thread_rule=self._thread_rule
                    )
                )
            except Exception as exc:
                log.exception("Cannot build the row for exchange %s", exchange.request_id)
                self._put_aside(exchange, unbuildable_reason(exc))
            # One row at a time: a batch of large bodies must not hold the proxy's requests back.
            await asyncio.sleep(0)
        return rows

    def _remember_parts(self, rows: list[ExchangeRow]) -> None:
        """Digests now committed, so later rows need not carry (nor compress) them again."""
        for row in rows:
            for part in row.parts:
                self._known_parts[part.digest] = None
        excess = len(self._known_parts) - _MAX_KNOWN_PARTS
        if excess > 0:
            for digest in list(itertools.islice(self._known_parts, excess)):
                del self._known_parts[digest]

    def _tell(self, rows: list[ExchangeRow], *, fresh: bool) -> None:
        """Hand rows to ``on_row``: all of a fresh batch, else only those it has not heard of."""
        if self._on_row is None:
            return
        for row in rows:
            if not fresh:
                key = str(row.id)
                if key not in self._unheard:
                    continue
                self._unheard.discard(key)
            try:
                self._on_row(row)
            except Exception:
                log.exception("The row listener failed on exchange %s", row.id)

    async def _back_off(self) -> None:
        """Wait before trying the store again, meanwhile moving new exchanges to the journal so
        memory stays bounded however long the database is away."""
        delay = self._retry_delays[min(self._failures, len(self._retry_delays)) - 1]
        await self._sleep(delay)
        spilled = self._take_all()
        if spilled:
            if self._on_row is not None:
                # Built once more on replay; the counters must not wait for the database.
                self._tell(await self._rows(spilled, store_bodies=False), fresh=True)
            self._journal.append(spilled)
            self.journaled += len(spilled)
            self._settle(spilled)
        await self.replay_journal()

    def _take_all(self) -> list[Exchange]:
        taken: list[Exchange] = []
        while not self._queue.empty():
            taken.append(self._dequeued(self._queue.get_nowait()))
        return taken

    async def replay_journal(self) -> None:
        """Store what the journal holds now (segments of this process closed, or of processes
        gone), oldest first; what the store does not take stays for a later attempt."""
        async with self._replaying:  # one replay at a time: both would claim the same segments
            await self._replay_segments()

    async def _replay_segments(self) -> None:
        for segment in self._journal.segments():
            replayed = 0
            # Batch by batch: a segment written during a long outage may not fit in memory.
            for batch in _batches(self._journal.read(segment), self._batch_size):
                if await self._store_batch(batch):
                    return  # still down: the segment stays for the next attempt
                replayed += len(batch)
            self._journal.remove(segment)
            log.info("Replayed %d journaled exchanges from %s", replayed, segment)


# Python objects around an exchange (structs, header tuples) weigh a few KB even for tiny bodies.
_OBJECT_OVERHEAD = 4096


def _size(exchange: Exchange) -> int:
    """Roughly the memory an exchange holds on to: its bodies, headers and object overhead."""
    headers = sum(len(name) + len(value) for name, value in exchange.request_headers)
    body = len(exchange.request_body or b"") + sum(len(chunk) for chunk in exchange.response_chunks)
    return _OBJECT_OVERHEAD + headers + body


def refused_reason(exc: StoreRejected) -> str:
    return f"the database refused its row: {exc}"


def unbuildable_reason(exc: Exception) -> str:
    return f"its row cannot be built: {type(exc).__name__}: {exc}"


def _by_id(batch: list[Exchange]) -> dict[uuid.UUID, Exchange]:
    """The exchanges by the id their rows carry (an exchange without a UUID has no row)."""
    found = {}
    for exchange in batch:
        with contextlib.suppress(ValueError):
            found[uuid.UUID(exchange.request_id)] = exchange
    return found


def _batches(exchanges: Iterator[Exchange], size: int) -> Iterator[list[Exchange]]:
    while batch := list(itertools.islice(exchanges, size)):
        yield batch
