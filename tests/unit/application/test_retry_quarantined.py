import pytest

from nexus.application.ports.exchange_store import StoreUnavailable
from nexus.application.recording.retry_quarantined import retry_quarantined
from tests.fakes import FlakyStore, MemoryQuarantine
from tests.unit.application.test_recorder import exchange


def quarantine_of(*numbers: int) -> MemoryQuarantine:
    kept = MemoryQuarantine()
    for n in numbers:
        kept.put(exchange(n), "the database refused its row: an older schema")
    return kept


async def test_what_the_store_takes_now_leaves_and_what_it_refuses_stays_with_the_new_reason() -> None:
    store, kept = FlakyStore(), quarantine_of(1, 2, 3)
    store.refused = {exchange(2).request_id}
    outcome = await retry_quarantined(kept, store, store_bodies=True)
    assert outcome.stored == 2
    assert set(store.rows) == {exchange(1).request_id, exchange(3).request_id}
    assert list(outcome.refused) == [exchange(2).request_id]
    assert outcome.refused[exchange(2).request_id].startswith("the database refused its row: invalid byte sequence")
    assert [entry.request_id for entry in kept.latest(5)] == [exchange(2).request_id]
    assert kept.latest(5)[0].reason == outcome.refused[exchange(2).request_id], "the reason is the new one"
    assert store.batches == [1, 1], "each on its own"


async def test_an_unavailable_store_stops_the_retry_and_keeps_every_entry() -> None:
    store, kept = FlakyStore(), quarantine_of(1, 2)
    store.down = True
    with pytest.raises(StoreUnavailable):
        await retry_quarantined(kept, store, store_bodies=True)
    assert kept.count() == 2


async def test_retrying_twice_stores_once() -> None:
    store, kept = FlakyStore(), quarantine_of(1)
    assert (await retry_quarantined(kept, store, store_bodies=True)).stored == 1
    assert (await retry_quarantined(kept, store, store_bodies=True)).stored == 0
    assert list(store.rows) == [exchange(1).request_id]
