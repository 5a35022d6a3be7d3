"""The MCP prompt server at /mcp, through the official ``mcp`` client over streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from tests.support.processes import ProxyProcess
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-mcp-tests"
CLIENT_KEY = "cnp_live_team_client_key_0123456789"

REVIEW = """\
description: Review a change
arguments:
  - name: language
    description: The language of the code
    required: true
  - name: focus
template: |
  Review this {{ language }} change{% if focus %}, looking at {{ focus }}{% endif %}.
"""


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "review.yaml").write_text(REVIEW)
    (directory / "hello.yml").write_text("name: say-hello\ntemplate: Hello!\n")
    (directory / "broken.yaml").write_text("template: [unclosed\n")
    (directory / "sneaky.yaml").write_text("template: \"{{ ''.__class__.__mro__ }}\"\n")
    return directory


@pytest.fixture
def mcp_proxy(start_proxy: Callable[..., RunningProxy], prompts_dir: Path, credentials_dir: Path) -> RunningProxy:
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "api_key", "api_key": "sk-ant-api03-x", "client_api_key": CLIENT_KEY})
    )
    return start_proxy(MCP_ENABLED="true", MCP_PROMPTS_DIR=str(prompts_dir), DASHBOARD_API_KEY=KEY)


def run(
    proxy: RunningProxy | ProxyProcess,
    work: Callable[[ClientSession], Any],
    *,
    key: str = KEY,
    host: str | None = None,
    on_message: Callable[[Any], Any] | None = None,
) -> Any:
    async def session() -> Any:
        headers = {"authorization": f"Bearer {key}"}
        if host:
            headers["host"] = host
        async with (
            httpx.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{proxy.url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write, message_handler=on_message) as client,
        ):
            await client.initialize()
            return await work(client)

    return asyncio.run(session())


def test_prompts_are_listed_and_rendered_with_their_arguments(mcp_proxy: RunningProxy) -> None:
    async def work(client: ClientSession) -> Any:
        listed = await client.list_prompts()
        got = await client.get_prompt("review", {"language": "Python", "focus": "errors"})
        plain = await client.get_prompt("say-hello")
        return listed, got, plain

    listed, got, plain = run(mcp_proxy, work)
    assert [prompt.name for prompt in listed.prompts] == ["review", "say-hello", "sneaky"], "by name; broken skipped"
    review = next(prompt for prompt in listed.prompts if prompt.name == "review")
    assert review.description == "Review a change"
    assert [(a.name, a.required) for a in review.arguments or []] == [("language", True), ("focus", False)]
    assert got.messages[0].role == "user"
    assert got.messages[0].content.text == "Review this Python change, looking at errors.\n"
    assert plain.messages[0].content.text == "Hello!"


def test_unknown_prompts_missing_arguments_and_sandbox_escapes_are_mcp_errors(mcp_proxy: RunningProxy) -> None:
    async def attempt(client: ClientSession, name: str, arguments: dict[str, str] | None) -> str:
        try:
            await client.get_prompt(name, arguments)
        except McpError as exc:
            return f"{exc.error.code}: {exc.error.message}"
        return "no error"

    async def work(client: ClientSession) -> list[str]:
        return [
            await attempt(client, "nope", None),
            await attempt(client, "review", {"focus": "x"}),
            await attempt(client, "broken", None),
            await attempt(client, "sneaky", None),
        ]

    unknown, missing, broken, sneaky = run(mcp_proxy, work)
    assert unknown == "-32602: Unknown prompt: 'nope'"
    assert missing == "-32602: Missing required arguments for 'review': language"
    assert broken == "-32602: Unknown prompt: 'broken'", "a malformed file is skipped"
    assert sneaky.startswith("-32603: 'sneaky': the template cannot be rendered")


class ChangeListener:
    """Counts ``notifications/prompts/list_changed`` as the client session receives them."""

    def __init__(self) -> None:
        self.changes = 0
        self._seen = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.PromptListChangedNotification
        ):
            self.changes += 1
            self._seen.set()

    async def next_change(self) -> None:
        await asyncio.wait_for(self._seen.wait(), timeout=10)
        self._seen.clear()


def test_a_connected_client_is_told_of_added_edited_and_removed_prompts(
    mcp_proxy: RunningProxy, prompts_dir: Path
) -> None:
    listener = ChangeListener()

    async def names(client: ClientSession) -> list[str]:
        return [prompt.name for prompt in (await client.list_prompts()).prompts]

    async def work(client: ClientSession) -> list[Any]:
        seen: list[Any] = [await names(client)]
        (prompts_dir / "added.yaml").write_text("description: new\ntemplate: Added\n")
        await listener.next_change()
        seen.append(await names(client))
        (prompts_dir / "added.yaml").write_text("description: edited, and longer\ntemplate: Edited\n")
        await listener.next_change()
        seen.append((await client.get_prompt("added")).messages[0].content.text)
        (prompts_dir / "added.yaml").unlink()
        await listener.next_change()
        seen.append(await names(client))
        return seen

    before, added, edited, removed = run(mcp_proxy, work, on_message=listener)
    assert "added" not in before
    assert "added" in added
    assert edited == "Edited"
    assert removed == before
    assert listener.changes == 3, "one notification per change"


def test_with_several_workers_sessions_are_stateless_and_nothing_is_pushed(
    start_proxy: Callable[..., RunningProxy], prompts_dir: Path
) -> None:
    proxy = start_proxy(MCP_ENABLED="true", MCP_PROMPTS_DIR=str(prompts_dir), DASHBOARD_API_KEY=KEY, WORKERS="2")

    async def session() -> Any:
        async with (
            httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}, timeout=30) as http,
            streamable_http_client(f"{proxy.url}/mcp", http_client=http) as (read, write, session_id),
            ClientSession(read, write) as client,
        ):
            initialized = await client.initialize()
            listed = await client.list_prompts()
            return initialized, listed, session_id()

    initialized, listed, session_id = asyncio.run(session())
    assert initialized.capabilities.prompts is not None
    assert initialized.capabilities.prompts.listChanged is False, "no session to push to"
    assert session_id is None, "any worker can answer any request"
    assert "review" in [prompt.name for prompt in listed.prompts]


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
def test_clients_of_each_current_protocol_version_are_answered_in_theirs(mcp_proxy: RunningProxy, version: str) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
    headers = {"authorization": f"Bearer {KEY}", "accept": "application/json, text/event-stream"}
    response = httpx.post(f"{mcp_proxy.url}/mcp", json=initialize, headers=headers)
    assert response.status_code == 200, response.text
    data = next(line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: "))
    result = json.loads(data)["result"]
    assert result["protocolVersion"] == version
    assert result["capabilities"]["prompts"] == {"listChanged": True}
    assert response.headers["mcp-session-id"]


def test_two_real_workers_answer_every_session_and_serve_an_edit(tmp_path: Path, prompts_dir: Path) -> None:
    env = {
        "STORAGE_ENABLED": "false",
        "MCP_ENABLED": "true",
        "MCP_PROMPTS_DIR": str(prompts_dir),
        "DASHBOARD_API_KEY": KEY,
    }
    proxy = ProxyProcess(cwd=tmp_path, env=env, args=("--workers", "2")).wait_ready(timeout=60)
    try:

        async def names(client: ClientSession) -> list[str]:
            return [prompt.name for prompt in (await client.list_prompts()).prompts]

        first = [run(proxy, names) for _ in range(8)]  # each a new connection: the kernel spreads them
        (prompts_dir / "fresh.yaml").write_text("template: Fresh\n")
        # No wait: a stateless prompts/list reads the folder again itself when it changed.
        after = [run(proxy, names) for _ in range(8)]
    finally:
        output = proxy.stop()
    assert all(listed == first[0] for listed in first), first
    assert all("fresh" in listed for listed in after), after
    assert "Traceback" not in output, output


def test_a_domains_client_key_is_accepted_on_its_host_and_others_are_refused(mcp_proxy: RunningProxy) -> None:
    async def names(client: ClientSession) -> list[str]:
        return [prompt.name for prompt in (await client.list_prompts()).prompts]

    assert "review" in run(mcp_proxy, names, key=CLIENT_KEY, host="team.example")
    url = f"{mcp_proxy.url}/mcp"
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"accept": "application/json, text/event-stream"}
    anonymous = httpx.post(url, json=hello, headers=accept)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=hello, headers={**accept, "authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    elsewhere = httpx.post(
        url, json=hello, headers={**accept, "authorization": f"Bearer {CLIENT_KEY}", "host": "other.example"}
    )
    assert elsewhere.status_code == 403, "a host without a credential file"
    rebinding = httpx.post(
        url, json=hello, headers={**accept, "authorization": f"Bearer {KEY}", "origin": "https://evil.example"}
    )
    assert rebinding.status_code == 403


def test_the_server_is_off_unless_enabled(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DASHBOARD_API_KEY=KEY)
    response = httpx.post(f"{proxy.url}/mcp", json={}, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 404


CLAUDE = Path(__file__).resolve().parents[2] / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"


def test_real_claude_code_connects_to_the_prompt_server(mcp_proxy: RunningProxy, tmp_path: Path) -> None:
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code is not installed at {CLAUDE}: `make test` installs it")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }

    def claude(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLAUDE), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )

    url = f"{mcp_proxy.url}/mcp"
    added = claude("mcp", "add", "--transport", "http", "nexus", url, "--header", f"Authorization: Bearer {KEY}")
    assert added.returncode == 0, added.stderr
    listed = claude("mcp", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"nexus: {url} (HTTP)" in listed.stdout, listed.stdout
    assert "Connected" in listed.stdout, listed.stdout

    claude("mcp", "remove", "nexus")
    claude("mcp", "add", "--transport", "http", "nexus", url, "--header", "Authorization: Bearer wrong")
    refused = claude("mcp", "list")
    assert "Connected" not in refused.stdout, refused.stdout
