import asyncio
from collections.abc import Iterator, Sequence

from nexus.application.exchange import Exchange
from nexus.application.ports.exchange_store import StoreUnavailable
from nexus.application.recording.recorder import ExchangeRecorder
from nexus.application.recording.row import ExchangeRow


def exchange(n: int) -> Exchange:
    return Exchange(
        request_id=f"00000000-0000-4000-8000-{n:012d}",
        method="GET",
        path="/v1/models",
        query_string=b"",
        domain="d",
        request_headers=[],
        started_at_ms=1_800_000_000_000 + n,
        status=200,
    )


class FlakyStore:
    def __init__(self) -> None:
        self.rows: dict[str, ExchangeRow] = {}
        self.down = False
        self.batches: list[int] = []

    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        self.batches.append(len(rows))
        for row in rows:
            self.rows.setdefault(str(row.id), row)


class MemoryJournal:
    def __init__(self) -> None:
        self.closed: list[list[Exchange]] = []
        self.open: list[Exchange] = []

    def append(self, exchanges: Sequence[Exchange]) -> None:
        self.open.extend(exchanges)

    def segments(self) -> list[str]:
        if self.open:
            self.closed.append(self.open)
            self.open = []
        return [str(index) for index, segment in enumerate(self.closed) if segment]

    def read(self, segment: str) -> Iterator[Exchange]:
        return iter(list(self.closed[int(segment)]))

    def remove(self, segment: str) -> None:
        self.closed[int(segment)] = []

    @property
    def waiting(self) -> int:
        return len(self.open) + sum(len(segment) for segment in self.closed)


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


def recorder(store: FlakyStore, journal: MemoryJournal, *, queue_size: int = 100) -> ExchangeRecorder:
    return ExchangeRecorder(
        store=store, journal=journal, store_bodies=True, queue_size=queue_size, batch_size=10, sleep=no_wait
    )


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_exchanges_are_stored_in_batches() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    sut = recorder(store, journal)
    await sut.start()
    for n in range(25):
        sut.observe(exchange(n))
    await settle()
    await sut.stop()
    assert len(store.rows) == 25
    assert max(store.batches) == 10


async def test_an_outage_goes_to_the_journal_and_is_replayed_once() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    sut = recorder(store, journal)
    await sut.start()
    store.down = True
    for n in range(30):
        sut.observe(exchange(n))
    await settle()
    assert journal.waiting == 30
    assert store.rows == {}
    store.down = False
    sut.observe(exchange(30))
    await settle()
    await sut.stop()
    assert sorted(store.rows) == sorted(str(exchange(n).request_id) for n in range(31))
    assert journal.waiting == 0


async def test_a_full_queue_spills_to_the_journal_without_waiting() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    sut = recorder(store, journal, queue_size=5)  # not started: nothing drains the queue
    for n in range(8):
        sut.observe(exchange(n))
    assert journal.waiting == 3
    await sut.stop()
    assert len(store.rows) == 5


async def test_stopping_while_the_store_is_down_journals_the_queue() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    store.down = True
    sut = recorder(store, journal)
    for n in range(4):
        sut.observe(exchange(n))
    await sut.stop()
    assert journal.waiting == 4


async def test_an_overflow_is_replayed_once_the_recorder_catches_up() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    sut = recorder(store, journal, queue_size=5)
    await sut.start()
    await settle()  # the task has started and replayed its (empty) journal
    for n in range(12):  # no await in between: 5 queued, 7 journaled
        sut.observe(exchange(n))
    await settle()
    assert len(store.rows) == 12, "the journaled overflow is stored without waiting for a failure"
    assert journal.waiting == 0
    await sut.stop()


async def test_memory_is_bounded_in_bytes_as_well() -> None:
    store, journal = FlakyStore(), MemoryJournal()
    sut = ExchangeRecorder(store=store, journal=journal, store_bodies=True, queue_bytes=215_000, sleep=no_wait)
    big = [exchange(n) for n in range(5)]
    for item in big:
        item.request_body = b"x" * 100_000
        sut.observe(item)  # not started: nothing drains the queue
    assert journal.waiting == 3, "two 100 KB exchanges (and their overhead) fit in 215 KB, the rest go to disk"
    await sut.stop()
    assert len(store.rows) == 2
