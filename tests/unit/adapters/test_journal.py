from pathlib import Path

import msgspec

from nexus.adapters.persistence.journal import FileJournal
from nexus.application.exchange import Exchange


def exchange(n: int, *headers: tuple[bytes, bytes]) -> Exchange:
    return Exchange(
        request_id=f"id-{n}",
        method="POST",
        path="/v1/messages",
        query_string=b"beta=true",
        domain="d",
        request_headers=[(b"x-custom", b"\x00\xffbinary"), *headers],
        request_body=b'{"model":"m"}',
        response_chunks=[b"event: a\n", b"data: {}\n\n"],
        started_at_ms=n,
        status=200,
    )


def test_segments_round_trip_and_are_claimed_once(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.append([exchange(1), exchange(2)])
    journal.append([exchange(3)])
    [segment] = journal.segments()
    assert list(journal.read(segment)) == [exchange(1), exchange(2), exchange(3)]
    assert list(tmp_path.glob("*.journal")) == [], "claimed by renaming: no other process can take it"
    journal.remove(segment)
    assert list(tmp_path.iterdir()) == []


def test_a_record_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.append([exchange(1), exchange(2)])
    [path] = list(tmp_path.glob("*.journal"))
    path.write_bytes(path.read_bytes()[:-5])
    [segment] = journal.segments()
    assert list(journal.read(segment)) == [exchange(1)]


def test_segments_claimed_by_a_dead_process_are_adopted(tmp_path: Path) -> None:
    dead = FileJournal(tmp_path)
    dead.append([exchange(1)])
    dead.close()
    [path] = list(tmp_path.glob("*.journal"))
    path.rename(path.with_suffix(".replay-999999999"))  # no such process
    [segment] = FileJournal(tmp_path).segments()
    assert list(FileJournal(tmp_path).read(segment)) == [exchange(1)]


def test_credentials_never_reach_the_disk(tmp_path: Path) -> None:
    secret = b"sk-ant-api03-never-on-disk"
    sent = exchange(1, (b"x-api-key", secret), (b"authorization", b"Bearer " + secret))
    journal = FileJournal(tmp_path)
    journal.append([sent])
    [path] = list(tmp_path.glob("*.journal"))
    assert secret not in path.read_bytes()
    [segment] = journal.segments()
    [kept] = journal.read(segment)
    assert kept.request_headers == [
        (b"x-custom", b"\x00\xffbinary"),
        (b"x-api-key", b"********"),
        (b"authorization", b"Bearer ********"),
    ]
    assert msgspec.structs.replace(kept, request_headers=sent.request_headers) == sent


def test_a_closed_journal_opens_a_new_segment_on_the_next_append(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path)
    journal.append([exchange(1)])
    journal.close()
    journal.close()  # twice is harmless
    journal.append([exchange(2)])
    journal.close()
    assert len(list(tmp_path.glob("*.journal"))) == 2
    assert [kept.request_id for segment in journal.segments() for kept in journal.read(segment)] == [
        exchange(1).request_id,
        exchange(2).request_id,
    ]
