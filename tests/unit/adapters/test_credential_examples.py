"""The example credential files: valid, complete, and never loaded as real credentials."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.domain.credentials import AccountLimits, CredentialFile, OAuthTokens, parse_credential_file
from nexus.domain.slack_message import SlackTarget

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "credentials").glob("*.credentials.json.example"))


def _documents() -> list[dict[str, Any]]:
    return [json.loads(path.read_bytes()) for path in EXAMPLES]


def test_there_are_examples_of_each_credential_type() -> None:
    assert {document["type"] for document in _documents()} == {"api_key", "oauth", "pool"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_each_example_is_a_valid_credential_file(path: Path) -> None:
    parse_credential_file(path.read_bytes())


def test_the_examples_show_every_field() -> None:
    """Together they use each field of the file format, so a new one shows up missing here."""
    documents = _documents()
    top = {name for document in documents for name in document}
    oauth = {name for document in documents for name in document.get("oauth", {})}
    slack = {name for document in documents for name in document.get("slack", {})}
    limits = {name for document in documents for name in document.get("limits", {})}

    def encoded_names(kind: type[msgspec.Struct]) -> set[str]:
        return {field.encode_name for field in msgspec.structs.fields(kind)}

    assert encoded_names(CredentialFile) - top == set()
    assert encoded_names(OAuthTokens) - oauth == set()
    assert encoded_names(AccountLimits) - limits == set()
    assert ({field.name for field in msgspec.structs.fields(SlackTarget)} | {"enabled"}) - slack == set()


async def test_the_loader_ignores_them(tmp_path: Path) -> None:
    """make run reads CREDENTIALS_DIR=credentials, where they sit: they must never be found."""
    for path in EXAMPLES:
        shutil.copy(path, tmp_path / path.name)
    store = FileCredentialStore(tmp_path)
    assert await store.list_all() == []
    for path in EXAMPLES:
        domain = path.name.removesuffix(".credentials.json.example")
        assert await store.find([domain]) is None
