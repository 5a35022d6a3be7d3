"""Prompts synced from GitHub: the real sync and httpx against a loopback fake of the REST API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nexus.adapters.prompts.github_sync import MANIFEST, GitHubFolder, GitHubPromptSync
from nexus.adapters.system import SystemClock
from nexus.application.ports.prompts import SyncStatus
from tests.support.fake_github import FakeGitHub

pytestmark = pytest.mark.integration

TOKEN = "ghp_secret_token_never_shown_0123456789"
REVIEW = "description: Review\ntemplate: Review {{ code }}\narguments:\n  - name: code\n    required: true\n"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


def sync_once(github: FakeGitHub, directory: Path, *, token: str | None = TOKEN, force: bool = True) -> SyncStatus:
    async def run() -> SyncStatus:
        async with httpx.AsyncClient(timeout=10) as client:
            folder = GitHubFolder(owner="team", repo="prompts", token=token, api_url=github.url)
            sync = GitHubPromptSync(
                folder=folder, directory=directory, client=client, clock=SystemClock(), min_gap_s=60
            )
            return await sync.sync(force=force)

    return asyncio.run(run())


def files(directory: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(directory.iterdir()) if not path.name.startswith(".")}


def test_a_sync_writes_the_folders_yaml_files_and_keeps_local_ones(github: FakeGitHub, tmp_path: Path) -> None:
    commit = github.commit(
        {
            "prompts/review.yaml": REVIEW,
            "prompts/hello.yml": "template: Hello\n",
            "prompts/README.md": "not a prompt",
            "prompts/nested/deep.yaml": "template: deeper\n",
            "other/elsewhere.yaml": "template: not in the folder\n",
        }
    )
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "mine.yaml").write_text("template: local only\n")

    status = sync_once(github, directory)

    assert status.state == "synced"
    assert status.commit == commit
    assert status.source == "team/prompts@main:prompts"
    assert status.written == ["hello.yml", "review.yaml"]
    assert status.kept == ["mine.yaml"]
    assert files(directory) == {
        "hello.yml": "template: Hello\n",
        "mine.yaml": "template: local only\n",
        "review.yaml": REVIEW,
    }
    assert not list(directory.glob(".*.tmp")), "no temporary file is left"
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["status"]["commit"] == commit
    assert TOKEN not in (directory / MANIFEST).read_text()
    sent = github.seen("/commits/main")[0][1]
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["x-github-api-version"] == "2022-11-28"


def test_an_unchanged_head_costs_one_conditional_call(github: FakeGitHub, tmp_path: Path) -> None:
    github.commit({"prompts/hello.yaml": "template: Hello\n"})
    sync_once(github, tmp_path)
    before = len(github.requests)

    again = sync_once(github, tmp_path)

    assert again.state == "unchanged"
    calls = github.requests[before:]
    assert len(calls) == 1, calls
    assert calls[0][1].get("if-none-match"), "sent with the previous ETag, so GitHub answers 304"


def test_a_new_commit_updates_adds_and_removes_but_keeps_local_edits(github: FakeGitHub, tmp_path: Path) -> None:
    github.commit(
        {"prompts/a.yaml": "template: A1\n", "prompts/b.yaml": "template: B\n", "prompts/c.yaml": "template: C\n"}
    )
    sync_once(github, tmp_path)
    (tmp_path / "c.yaml").write_text("template: C edited here\n")
    blobs_before = len(github.seen("/git/blobs/"))

    github.commit({"prompts/a.yaml": "template: A2\n", "prompts/d.yaml": "template: D\n"})
    status = sync_once(github, tmp_path)

    assert status.state == "synced"
    assert status.written == ["a.yaml", "d.yaml"]
    assert status.removed == ["b.yaml"], "gone from the repository and untouched here"
    assert status.kept == ["c.yaml"], "gone from the repository but edited here: kept"
    assert files(tmp_path) == {
        "a.yaml": "template: A2\n",
        "c.yaml": "template: C edited here\n",
        "d.yaml": "template: D\n",
    }
    assert len(github.seen("/git/blobs/")) - blobs_before == 2, "only the changed files are fetched"


@pytest.mark.parametrize(
    ("trouble", "expected"),
    [
        ("token", "GitHub refused the token (401): check MCP_GITHUB_TOKEN"),
        ("rate", "GitHub's rate limit is used up until 08:00 UTC"),
        ("corrupt", "GitHub sent a file that does not match its hash"),
        ("branch", "GitHub has no such branch for team/prompts@main:prompts (404)"),
        ("down", "GitHub cannot be reached: ConnectError"),
    ],
)
def test_a_failed_sync_says_why_and_leaves_the_files_alone(
    github: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture, trouble: str, expected: str
) -> None:
    first = github.commit({"prompts/hello.yaml": "template: Hello\n"})
    sync_once(github, tmp_path)
    github.commit({"prompts/hello.yaml": "template: Changed\n"}, branch="main")
    token = TOKEN
    if trouble == "token":
        token = "ghp_wrong_token"
    elif trouble == "rate":
        github.rate_limited = True
    elif trouble == "corrupt":
        github.corrupt_blobs = True
    elif trouble == "branch":
        github.branches.clear()
    elif trouble == "down":
        github.__exit__()

    with caplog.at_level(logging.DEBUG):
        status = sync_once(github, tmp_path, token=token)

    assert status.state == "failed"
    assert (status.error or "").startswith(expected), status.error
    assert status.commit == first, "the last good commit is still the one recorded"
    assert files(tmp_path) == {"hello.yaml": "template: Hello\n"}
    assert TOKEN not in caplog.text
    assert TOKEN not in (tmp_path / MANIFEST).read_text()


def test_a_round_soon_after_another_workers_is_skipped(github: FakeGitHub, tmp_path: Path) -> None:
    github.commit({"prompts/hello.yaml": "template: Hello\n"})
    first = sync_once(github, tmp_path, force=False)
    before = len(github.requests)

    second = sync_once(github, tmp_path, force=False)

    assert second == first, "within the gap another worker's status is answered as it is"
    assert len(github.requests) == before
