"""The credential file store on a real directory."""

import json
import os
import stat
from pathlib import Path

import pytest

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.domain.credentials import CredentialFileInvalid, OAuthTokens

pytestmark = pytest.mark.integration


def write(directory: Path, name: str, document: object) -> Path:
    path = directory / f"{name}.credentials.json"
    path.write_text(json.dumps(document))
    return path


async def test_edits_are_seen_without_a_restart(tmp_path: Path) -> None:
    store = FileCredentialStore(tmp_path)
    write(tmp_path, "team.example", {"type": "api_key", "api_key": "sk-one"})
    first = await store.find(["team.example"])
    assert first is not None
    assert first.credential.api_key == "sk-one"
    write(tmp_path, "team.example", {"type": "api_key", "api_key": "sk-second"})
    second = await store.find(["team.example"])
    assert second is not None
    assert second.credential.api_key == "sk-second"
    (tmp_path / "team.example.credentials.json").unlink()
    assert await store.find(["team.example"]) is None


async def test_a_malformed_file_is_reported_by_name_without_its_content(tmp_path: Path) -> None:
    store = FileCredentialStore(tmp_path)
    (tmp_path / "team.example.credentials.json").write_text('{"type": "api_key", "api_key": "sk-secret"')
    with pytest.raises(CredentialFileInvalid) as caught:
        await store.find(["team.example"])
    assert "team.example.credentials.json" in str(caught.value)
    assert "sk-secret" not in str(caught.value)


@pytest.mark.parametrize("name", ["../outside", "..", "a/b", "a\\b", "", "a\x00b"])
async def test_names_that_would_leave_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    inside = tmp_path / "credentials"
    inside.mkdir()
    write(tmp_path, "outside", {"type": "api_key", "api_key": "sk-outside"})
    with pytest.raises(CredentialFileInvalid):
        await FileCredentialStore(inside).find([name])


async def test_saving_tokens_is_atomic_keeps_other_fields_and_the_file_mode(tmp_path: Path) -> None:
    store = FileCredentialStore(tmp_path)
    path = write(
        tmp_path,
        "team.example",
        {
            "type": "oauth",
            "accountId": "acc_1",
            "client_api_key": "cnp_live_k",
            "slack": {"channel": "#ops"},
            "oauth": {"accessToken": "sk-ant-oat01-old", "refreshToken": "sk-ant-ort01-old", "isMax": True},
        },
    )
    os.chmod(path, 0o600)
    inode_before = path.stat().st_ino
    saved = await store.save_oauth(str(path), OAuthTokens(access_token="sk-ant-oat01-new", expires_at=42))
    document = json.loads(path.read_text())
    assert document["oauth"] == {
        "accessToken": "sk-ant-oat01-new",
        "refreshToken": "sk-ant-ort01-old",
        "expiresAt": 42,
        "isMax": True,
    }
    assert (document["accountId"], document["client_api_key"], document["slack"]) == (
        "acc_1",
        "cnp_live_k",
        {"channel": "#ops"},
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode_before, "replaced by rename, not rewritten in place"
    assert saved.credential.oauth is not None
    assert saved.credential.oauth.access_token == "sk-ant-oat01-new"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "team.example.credentials.json"
    ]


async def test_update_document_refuses_to_write_an_unusable_record(tmp_path: Path) -> None:
    store = FileCredentialStore(tmp_path)
    path = write(tmp_path, "team.example", {"type": "api_key", "api_key": "sk-one"})
    with pytest.raises(CredentialFileInvalid):
        await store.update_document("team.example", lambda document: {**(document or {}), "type": "oauth"})
    assert json.loads(path.read_text()) == {"type": "api_key", "api_key": "sk-one"}


async def test_listing_shows_good_and_bad_files(tmp_path: Path) -> None:
    write(tmp_path, "a.example", {"type": "api_key", "api_key": "sk-a"})
    (tmp_path / "b.example.credentials.json").write_text("{")
    entries = await FileCredentialStore(tmp_path).list_all()
    assert [(entry.name, entry.credential is not None) for entry in entries] == [
        ("a.example", True),
        ("b.example", False),
    ]
