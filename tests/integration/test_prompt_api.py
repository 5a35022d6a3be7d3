"""The management API's prompt routes and the sync as the running proxy does it: on demand,
on its interval, seen by a connected MCP client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from tests.support.fake_github import FakeGitHub
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-prompt-api-tests"
TOKEN = "ghp_prompt_api_token_0123456789"
AUTH = {"x-api-key": KEY}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "local.yaml").write_text(
        "description: Written here\ntemplate: Local {{ x }}\narguments: [{name: x}]\n"
    )
    (directory / "broken.yaml").write_text("template: [unclosed\n")
    return directory


def synced_proxy(
    start: Callable[..., RunningProxy], github: FakeGitHub, prompts_dir: Path, **extra: str
) -> RunningProxy:
    return start(
        MCP_ENABLED="true",
        MCP_PROMPTS_DIR=str(prompts_dir),
        DASHBOARD_API_KEY=KEY,
        MCP_GITHUB_OWNER="team",
        MCP_GITHUB_REPO="prompts",
        MCP_GITHUB_TOKEN=TOKEN,
        MCP_GITHUB_API_URL=github.url,
        **extra,
    )


def test_prompts_are_listed_searched_and_shown_with_invalid_files_explained(
    start_proxy: Callable[..., RunningProxy], prompts_dir: Path
) -> None:
    proxy = start_proxy(MCP_PROMPTS_DIR=str(prompts_dir), DASHBOARD_API_KEY=KEY)
    listed = httpx.get(f"{proxy.url}/api/mcp/prompts", headers=AUTH)
    assert listed.status_code == 200
    body = listed.json()
    assert body["mcp_enabled"] is False
    by_name = {prompt["name"]: prompt for prompt in body["prompts"]}
    assert by_name["local"]["valid"] is True
    assert by_name["local"]["template"] == "Local {{ x }}"
    assert by_name["local"]["arguments"] == [{"name": "x", "description": None, "required": False}]
    assert by_name["broken"]["valid"] is False
    assert "cannot be read" in by_name["broken"]["problem"]

    searched = httpx.get(f"{proxy.url}/api/mcp/prompts", params={"search": "WRITTEN"}, headers=AUTH).json()
    assert [prompt["name"] for prompt in searched["prompts"]] == ["local"], "matches the description, any case"
    one = httpx.get(f"{proxy.url}/api/mcp/prompts/local", headers=AUTH)
    assert one.status_code == 200
    assert one.json()["file"] == "local.yaml"
    missing = httpx.get(f"{proxy.url}/api/mcp/prompts/nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No prompt is named 'nope'"
    assert httpx.get(f"{proxy.url}/api/mcp/prompts").status_code == 401

    not_configured = httpx.post(f"{proxy.url}/api/mcp/sync", headers=AUTH)
    assert not_configured.status_code == 409
    assert "MCP_GITHUB_OWNER" in not_configured.json()["error"]["message"]
    assert httpx.get(f"{proxy.url}/api/mcp/sync/status", headers=AUTH).json() == {"configured": False, "status": None}

    spec = httpx.get(f"{proxy.url}/docs/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values() if "operationId" in op}
    assert {"ListPrompts", "GetPrompt", "SyncPrompts", "GetPromptSyncStatus"} <= operations


def test_sync_now_fetches_the_repository_and_reports_its_status(
    start_proxy: Callable[..., RunningProxy], github: FakeGitHub, prompts_dir: Path
) -> None:
    github.commit({"prompts/team.yaml": "description: From the repo\ntemplate: Team prompt\n"})
    proxy = synced_proxy(start_proxy, github, prompts_dir, MCP_SYNC_INTERVAL="3600")

    synced = httpx.post(f"{proxy.url}/api/mcp/sync", headers=AUTH, timeout=30)

    assert synced.status_code == 200, synced.text
    status = synced.json()
    assert status["state"] in ("synced", "unchanged"), "the start-up round may have taken it already"
    assert status["commit"] == github.branches["main"]
    names = [prompt["name"] for prompt in httpx.get(f"{proxy.url}/api/mcp/prompts", headers=AUTH).json()["prompts"]]
    assert names == ["broken", "local", "team"], "the local files stay"
    reported = httpx.get(f"{proxy.url}/api/mcp/sync/status", headers=AUTH).json()
    assert reported["configured"] is True
    assert reported["status"]["source"] == "team/prompts@main:prompts"
    assert TOKEN not in synced.text + str(reported)


def test_a_new_commit_reaches_a_connected_mcp_client_on_the_sync_interval(
    start_proxy: Callable[..., RunningProxy], github: FakeGitHub, prompts_dir: Path
) -> None:
    github.commit({"prompts/first.yaml": "template: First\n"})
    proxy = synced_proxy(start_proxy, github, prompts_dir, MCP_SYNC_INTERVAL="1")
    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.PromptListChangedNotification
        ):
            changed.set()

    async def names(client: ClientSession) -> list[str]:
        return [prompt.name for prompt in (await client.list_prompts()).prompts]

    async def session() -> tuple[list[str], list[str]]:
        async with (
            httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}, timeout=30) as http,
            streamable_http_client(f"{proxy.url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write, message_handler=on_message) as client,
        ):
            await client.initialize()
            before = await names(client)
            github.commit({"prompts/first.yaml": "template: First\n", "prompts/second.yaml": "template: Second\n"})
            after = before
            while "second" not in after:  # each notification, the list again (the first sync's may come late)
                changed.clear()
                await asyncio.wait_for(changed.wait(), timeout=15)
                after = await names(client)
            return before, after

    deadline = time.monotonic() + 10
    while not (prompts_dir / "first.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the start-up round
    before, after = asyncio.run(session())
    assert "first" in before
    assert "second" not in before
    assert "second" in after
