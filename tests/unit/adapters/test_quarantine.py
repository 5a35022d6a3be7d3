from pathlib import Path

from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.application.exchange import Exchange

SECRET = b"sk-ant-api03-quarantined-never-kept"


def exchange(request_id: str) -> Exchange:
    return Exchange(
        request_id=request_id,
        method="POST",
        path="/v1/messages",
        query_string=b"",
        domain="d",
        request_headers=[(b"x-api-key", SECRET), (b"user-agent", b"claude-cli/2.1")],
        request_body=b'{"model":"m","messages":[]}',
        started_at_ms=1_800_000_000_000,
        status=200,
    )


def test_an_exchange_is_kept_with_its_reason_and_without_its_credentials(tmp_path: Path) -> None:
    quarantine = FileQuarantine(tmp_path / "q")
    assert quarantine.count() == 0
    assert quarantine.latest(5) == []
    quarantine.put(exchange("0b1c"), "the database refused its row: DataError [22021]")
    [path] = list((tmp_path / "q").iterdir())
    assert path.name == "0b1c.quarantined"
    assert SECRET not in path.read_bytes()
    [entry] = quarantine.latest(5)
    assert (entry.request_id, entry.reason) == ("0b1c", "the database refused its row: DataError [22021]")
    [(found, kept)] = list(quarantine.entries())
    assert kept.request_headers == [(b"x-api-key", b"********"), (b"user-agent", b"claude-cli/2.1")]
    assert kept.request_body == exchange("0b1c").request_body
    quarantine.release(found)
    assert quarantine.count() == 0


def test_the_same_exchange_twice_is_one_entry_and_ids_cannot_leave_the_folder(tmp_path: Path) -> None:
    quarantine = FileQuarantine(tmp_path / "q")
    quarantine.put(exchange("same"), "first")
    quarantine.put(exchange("same"), "second")
    quarantine.put(exchange("../../escape"), "odd id")
    assert quarantine.count() == 2
    assert sorted(path.name for path in (tmp_path / "q").iterdir()) == ["______escape.quarantined", "same.quarantined"]
    assert [entry.reason for entry in quarantine.latest(5)] == ["odd id", "second"]


def test_an_unreadable_entry_is_counted_but_not_listed(tmp_path: Path) -> None:
    quarantine = FileQuarantine(tmp_path)
    quarantine.put(exchange("good"), "kept")
    (tmp_path / "torn.quarantined").write_bytes(b"\x93not msgpack")
    assert quarantine.count() == 2
    assert [entry.request_id for entry in quarantine.latest(5)] == ["good"]
