import asyncio
from pathlib import Path
from typing import Any

import pytest

from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.write_ahead import WriteAheadLog
from nexus.application.exchange import Exchange
from nexus.application.recording.recorder import ExchangeRecorder
from tests.fakes import FlakyStore, MemoryJournal, MemoryQuarantine


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


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


def recorder(
    store: FlakyStore, journal: MemoryJournal, *, queue_size: int = 100, quarantine: MemoryQuarantine | None = None
) -> ExchangeRecorder:
    return ExchangeRecorder(
        store=store,
        journal=journal,
        quarantine=quarantine or MemoryQuarantine(),
        store_bodies=True,
        queue_size=queue_size,
        batch_size=10,
        sleep=no_wait,
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
    assert journal.closes == 1, "the segment is closed at shutdown"


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
    sut = ExchangeRecorder(
        store=store,
        journal=journal,
        quarantine=MemoryQuarantine(),
        store_bodies=True,
        queue_bytes=215_000,
        sleep=no_wait,
    )
    big = [exchange(n) for n in range(5)]
    for item in big:
        item.request_body = b"x" * 100_000
        sut.observe(item)  # not started: nothing drains the queue
    assert journal.waiting == 3, "two 100 KB exchanges (and their overhead) fit in 215 KB, the rest go to disk"
    await sut.stop()
    assert len(store.rows) == 2


# --- a row the store refuses --------------------------------------------------------------------


async def test_a_refused_row_costs_none_of_its_batch_mates(caplog: pytest.LogCaptureFixture) -> None:
    store, journal, quarantine = FlakyStore(), MemoryJournal(), MemoryQuarantine()
    bad = exchange(17)
    store.refused.add(bad.request_id)
    sut = recorder(store, journal, quarantine=quarantine)
    await sut.start()
    for n in range(39):
        sut.observe(exchange(n))
    await settle()
    await sut.stop()
    assert sorted(store.rows) == sorted(exchange(n).request_id for n in range(39) if n != 17)
    assert list(quarantine.kept) == [bad.request_id]
    assert "invalid byte sequence" in quarantine.kept[bad.request_id][1]
    assert (sut.stored, sut.quarantined, sut.journaled) == (38, 1, 0)
    assert f"Exchange {bad.request_id} is quarantined" in caplog.text
    assert "cannot reach the database" not in caplog.text
    # Halving a batch of 10 down to one row: a few more transactions, never one per row.
    assert store.calls < 4 + 2 * 4


async def test_a_journal_holding_a_refused_row_is_replayed_once() -> None:
    store, journal, quarantine = FlakyStore(), MemoryJournal(), MemoryQuarantine()
    bad = exchange(5)
    store.refused.add(bad.request_id)
    sut = recorder(store, journal, quarantine=quarantine)
    await sut.start()
    store.down = True
    for n in range(20):
        sut.observe(exchange(n))
    await settle()
    assert journal.waiting == 20
    store.down = False
    sut.observe(exchange(20))
    await settle()
    calls = store.calls
    for n in range(21, 24):  # later traffic must not replay anything again
        sut.observe(exchange(n))
    await settle()
    await sut.stop()
    assert len(store.rows) == 23
    assert journal.waiting == 0
    assert quarantine.puts == 1
    assert store.calls - calls <= 3


async def test_an_outage_while_a_batch_is_split_journals_what_is_left() -> None:
    store, journal, quarantine = FlakyStore(), MemoryJournal(), MemoryQuarantine()
    store.refused.add(exchange(2).request_id)
    sut = recorder(store, journal, quarantine=quarantine)
    original = store.store

    async def goes_down_after_the_first_split(rows: list[Any]) -> None:
        if store.calls == 1:
            store.down = True  # the second attempt (the first half) finds the database gone
        await original(rows)

    store.store = goes_down_after_the_first_split  # type: ignore[method-assign]
    for n in range(8):
        sut.observe(exchange(n))
    await sut.stop()  # not started: stop stores the queue, or journals it
    assert store.rows == {}
    assert journal.waiting == 8, "what the outage left unstored is journaled, nothing is dropped"
    assert quarantine.puts == 0


async def test_an_exchange_whose_row_cannot_be_built_is_quarantined(caplog: pytest.LogCaptureFixture) -> None:
    store, journal, quarantine = FlakyStore(), MemoryJournal(), MemoryQuarantine()
    broken = exchange(1)
    broken.request_id = "not-a-uuid"
    sut = recorder(store, journal, quarantine=quarantine)
    sut.observe(broken)
    sut.observe(exchange(2))
    await sut.stop()
    assert list(store.rows) == [exchange(2).request_id]
    assert "its row cannot be built" in quarantine.kept["not-a-uuid"][1]
    assert "Exchange not-a-uuid is quarantined" in caplog.text


async def test_a_quarantine_that_cannot_write_says_the_exchange_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    store, journal, quarantine = FlakyStore(), MemoryJournal(), MemoryQuarantine()
    quarantine.broken = True
    store.refused.add(exchange(1).request_id)
    sut = recorder(store, journal, quarantine=quarantine)
    sut.observe(exchange(1))
    sut.observe(exchange(2))
    await sut.stop()
    assert list(store.rows) == [exchange(2).request_id]
    assert f"Exchange {exchange(1).request_id} is lost" in caplog.text
    assert "No space left on device" in caplog.text
    assert sut.quarantined == 0


def write_ahead_recorder(
    store: FlakyStore, directory: Path, *, segment_bytes: int, wal: WriteAheadLog | None = None
) -> ExchangeRecorder:
    return ExchangeRecorder(
        store=store,
        journal=FileJournal(directory),
        quarantine=MemoryQuarantine(),
        store_bodies=True,
        batch_size=10,
        sleep=no_wait,
        write_ahead=wal or WriteAheadLog(directory, segment_bytes=segment_bytes),
    )


def left_for_the_next_start(directory: Path) -> list[str]:
    replayer = FileJournal(directory)
    return [kept.request_id for segment in replayer.segments() for kept in replayer.read(segment)]


async def test_the_write_ahead_log_lets_go_of_what_is_stored(tmp_path: Path) -> None:
    store = FlakyStore()
    sut = write_ahead_recorder(store, tmp_path, segment_bytes=2_000)  # a few exchanges a segment
    await sut.start()
    for n in range(25):
        item = exchange(n)
        if n % 2:
            sut.write_ahead(item)  # as the proxy does before the last byte; observe then adds nothing
        sut.observe(item)
    await settle()
    assert len(store.rows) == 25
    assert len(list(tmp_path.glob("*.wal"))) <= 1, "full segments are removed once all of them is stored"
    await sut.stop()
    assert list(tmp_path.glob("*.wal")) == []
    assert left_for_the_next_start(tmp_path) == []


async def test_what_was_not_stored_stays_in_the_write_ahead_log_for_the_next_start(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    sut = write_ahead_recorder(FlakyStore(), tmp_path, segment_bytes=0, wal=wal)  # never started: nothing is stored
    sent = [exchange(n) for n in range(3)]
    for item in sent:
        sut.write_ahead(item)
        sut.observe(item)  # already written ahead: not written twice
    assert left_for_the_next_start(tmp_path) == [], "a live process holds its log"
    wal.close()  # as its process ends (a killed one's lock goes with it: tests/unit/adapters/test_write_ahead.py)
    assert left_for_the_next_start(tmp_path) == [item.request_id for item in sent]


async def test_exchanges_journaled_in_an_outage_leave_the_write_ahead_log(tmp_path: Path) -> None:
    store = FlakyStore()
    store.down = True
    sut = write_ahead_recorder(store, tmp_path, segment_bytes=1_000_000)
    await sut.start()
    for n in range(4):
        sut.observe(exchange(n))
    await settle()
    await sut.stop()
    assert list(tmp_path.glob("*.wal")) == [], "all of it went to the journal"
    assert sorted(left_for_the_next_start(tmp_path)) == sorted(exchange(n).request_id for n in range(4))
