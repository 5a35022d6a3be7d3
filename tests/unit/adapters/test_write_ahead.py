from pathlib import Path

from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.write_ahead import SETTLED_ROTATE_BYTES, WriteAheadLog
from tests.unit.adapters.test_journal import exchange, killed_after


def replayable(directory: Path) -> list[str]:
    journal = FileJournal(directory)
    return [kept.request_id for segment in journal.segments() for kept in journal.read(segment)]


def test_a_process_killed_right_after_the_append_loses_nothing(tmp_path: Path) -> None:
    killed_after("log = WriteAheadLog(where); log.append(exchange(1)); log.append(exchange(2))", tmp_path)
    assert replayable(tmp_path) == ["id-1", "id-2"]


def test_a_live_log_is_never_replayed_by_another(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    log.append(exchange(1))
    assert replayable(tmp_path) == []
    log.close()
    assert replayable(tmp_path) == ["id-1"], "closed with a record never settled: the next start replays it"


def test_full_segments_go_once_all_they_hold_is_settled(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path, segment_bytes=1)  # one record a segment
    marks = [log.append(exchange(n)) for n in range(3)]
    assert len(list(tmp_path.glob("*.wal"))) == 3
    log.settle(marks[1])
    assert len(list(tmp_path.glob("*.wal"))) == 2
    log.close()
    assert replayable(tmp_path) == ["id-0", "id-2"]


def test_a_settled_large_segment_is_swapped_for_a_new_one(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    big = exchange(1)
    big.request_body = b"x" * SETTLED_ROTATE_BYTES
    log.settle(log.append(big))
    assert list(tmp_path.glob("*.wal")) == []
    small = log.append(exchange(2))
    log.settle(small)
    assert len(list(tmp_path.glob("*.wal"))) == 1, "a small settled segment stays open for the next records"
    log.close()
    assert list(tmp_path.glob("*.wal")) == []


def test_credentials_never_reach_the_log(tmp_path: Path) -> None:
    secret = b"sk-ant-api03-never-on-disk"
    log = WriteAheadLog(tmp_path)
    log.append(exchange(1, (b"x-api-key", secret)))
    [path] = tmp_path.glob("*.wal")
    assert secret not in path.read_bytes()


def test_a_disk_that_refuses_costs_the_record_not_the_request(tmp_path: Path) -> None:
    (tmp_path / "journal").write_text("a file where the directory should be")
    log = WriteAheadLog(tmp_path / "journal")
    assert log.append(exchange(1)) is None
    log.settle(None)
    assert log.failed == 1


async def test_fsync_runs_beside_the_appends(tmp_path: Path) -> None:
    import asyncio

    log = WriteAheadLog(tmp_path)
    syncing = asyncio.create_task(log.sync_forever(0.01))
    for n in range(20):
        log.append(exchange(n))
        await asyncio.sleep(0.002)
    syncing.cancel()
    log.close()
    assert len(replayable(tmp_path)) == 20
