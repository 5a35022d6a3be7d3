import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

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
    assert FileJournal(tmp_path).segments() == [], "claimed: no other process can take it"
    journal.remove(segment)
    assert list(tmp_path.iterdir()) == []


def test_a_segment_still_written_is_never_claimed(tmp_path: Path) -> None:
    writer = FileJournal(tmp_path)
    writer.append([exchange(1)])
    assert FileJournal(tmp_path).segments() == [], "its writer holds it"
    writer.append([exchange(2)])
    writer.close()
    replayer = FileJournal(tmp_path)
    [segment] = replayer.segments()
    assert [kept.request_id for kept in replayer.read(segment)] == ["id-1", "id-2"]


def killed_after(statements: str, directory: Path) -> None:
    """Run ``statements`` (``exchange`` and the adapters at hand, ``directory`` as ``where``) in
    a process of their own, then SIGKILL it: nothing closes or flushes on the way out."""
    script = (
        "import os, signal, sys\n"
        "from nexus.adapters.persistence.journal import FileJournal\n"
        "from nexus.adapters.persistence.write_ahead import WriteAheadLog\n"
        "from tests.unit.adapters.test_journal import exchange\n"
        "where = sys.argv[1]\n"
        f"{statements}\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(directory)], check=False)
    assert killed.returncode == -signal.SIGKILL


def test_the_segment_of_a_process_killed_mid_write_is_claimed(tmp_path: Path) -> None:
    killed_after("FileJournal(where).append([exchange(7)])", tmp_path)
    journal = FileJournal(tmp_path)
    [segment] = journal.segments()
    assert [kept.request_id for kept in journal.read(segment)] == ["id-7"]


def test_a_record_torn_by_a_crash_is_skipped_and_the_segment_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = FileJournal(tmp_path)
    journal.append([exchange(1), exchange(2)])
    journal.close()
    [path] = list(tmp_path.glob("*.journal"))
    path.write_bytes(path.read_bytes()[:-5])
    [segment] = journal.segments()
    assert list(journal.read(segment)) == [exchange(1)]
    journal.remove(segment)
    assert journal.segments() == [], "never replayed again"
    assert [kept.name for kept in (tmp_path / "damaged").iterdir()] == [path.name]
    assert f"Journal segment {path.name} is damaged (cut short at byte" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:4] + b"\xc1" * 40 + data[44:], id="garbage-record"),
        pytest.param(lambda data: b"\xff\xff\xff\xf0" + data[4:], id="length-past-the-end"),
        pytest.param(lambda data: data[:2], id="torn-length"),
    ],
)
def test_a_damaged_segment_never_blocks_the_rest(
    tmp_path: Path, damage: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    journal = FileJournal(tmp_path)
    journal.append([exchange(1)])
    journal.close()
    journal.append([exchange(2)])
    journal.close()
    first, _ = sorted(tmp_path.glob("*.journal"))
    first.write_bytes(damage(first.read_bytes()))
    replayed = []
    for segment in journal.segments():
        replayed += [kept.request_id for kept in journal.read(segment)]
        journal.remove(segment)
    assert replayed == ["id-2"]
    assert (tmp_path / "damaged" / first.name).exists()
    assert "is damaged" in caplog.text


def test_segments_claimed_by_renaming_before_locks_are_adopted(tmp_path: Path) -> None:
    dead = FileJournal(tmp_path)
    dead.append([exchange(1)])
    dead.close()
    [path] = list(tmp_path.glob("*.journal"))
    path.rename(path.with_suffix(".replay-999999999"))  # as an earlier version left it
    journal = FileJournal(tmp_path)
    [segment] = journal.segments()
    assert list(journal.read(segment)) == [exchange(1)]


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
