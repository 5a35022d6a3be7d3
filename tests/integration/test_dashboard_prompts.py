"""The dashboard's Prompts page (files, search, one template, the GitHub sync and its button)
and, on a conversation, the MCP prompt it started from: real Claude Code runs the prompt."""

from __future__ import annotations

import html
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_api_conversations import chat
from tests.support.dashboard import csrf_token, sign_in
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.fake_github import FakeGitHub
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-prompt-page-tests"
API = {"x-api-key": KEY}
CLAUDE = Path(__file__).resolve().parents[2] / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
REVIEW = """\
description: Review a <change>
arguments:
  - name: language
    required: true
template: |
  Review this {{ language }} change.
"""


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "review.yaml").write_text(REVIEW)
    (directory / "broken.yaml").write_text("template: [unclosed\n")
    return directory


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def test_the_page_lists_searches_and_shows_a_template(
    start_proxy: Callable[..., RunningProxy], prompts_dir: Path
) -> None:
    proxy = start_proxy(MCP_ENABLED="true", MCP_PROMPTS_DIR=str(prompts_dir), DASHBOARD_API_KEY=KEY)
    browser = sign_in(proxy.url, KEY)

    page = browser.get("/dashboard/prompts")

    assert page.status_code == 200
    text = page.text
    assert 'href="/dashboard/prompts" aria-current="page"' in text, "in the navigation"
    assert "2 files, 1 not served" in text
    assert "Review a &lt;change&gt;" in text, "escaped"
    assert "invalid: the file cannot be read" in text
    assert "MCP server is off" not in text
    assert "GitHub sync" not in text, "no sync configured"

    searched = browser.get("/dashboard/prompts", params={"search": "BROKEN"}).text
    assert "1 file, 1 not served" in searched

    shown = browser.get("/dashboard/prompts", params={"name": "review"})
    assert shown.status_code == 200
    assert "Review this {{ language }} change." in html.unescape(shown.text)
    assert "<td><code>language</code></td><td>yes</td>" in shown.text
    unknown = browser.get("/dashboard/prompts", params={"name": "nope"})
    assert unknown.status_code == 404
    assert "No prompt is named <code>nope</code>" in unknown.text
    assert httpx.get(f"{proxy.url}/dashboard/prompts").status_code in (302, 303), "behind the login"


def test_sync_now_needs_the_csrf_token_and_shows_what_it_did(
    start_proxy: Callable[..., RunningProxy], prompts_dir: Path, github: FakeGitHub
) -> None:
    proxy = start_proxy(
        MCP_PROMPTS_DIR=str(prompts_dir),
        DASHBOARD_API_KEY=KEY,
        MCP_GITHUB_OWNER="team",
        MCP_GITHUB_REPO="prompts",
        MCP_GITHUB_API_URL=github.url,
    )
    browser = sign_in(proxy.url, KEY)
    page = browser.get("/dashboard/prompts").text
    assert "MCP server is off" in page
    assert "never" in page, "no sync has run (MCP is off, so no interval either)"
    github.commit({"prompts/team.yaml": "description: From the team\ntemplate: Team\n"})

    forged = browser.post("/dashboard/prompts/sync")
    assert forged.status_code == 403
    assert not (prompts_dir / "team.yaml").exists()

    done = browser.post("/dashboard/prompts/sync", data={"_csrf_token": csrf_token(page)})

    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/prompts?synced=1"
    after = browser.get(done.headers["location"]).text
    assert "Sync done: synced." in after
    assert '<dd data-fact="sync-state">synced</dd>' in after
    assert "<dt>Written</dt><dd>team.yaml</dd>" in after
    assert "<dt>Kept (local only or edited here)</dt><dd>broken.yaml, review.yaml</dd>" in after
    assert "From the team" in after


def test_a_conversation_shows_the_mcp_prompt_claude_code_started_it_from(
    start_proxy: Callable[..., RunningProxy],
    fake: FakeAnthropic,
    database_url: str,
    prompts_dir: Path,
    tmp_path: Path,
) -> None:
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code is not installed at {CLAUDE}: `make test` installs it")
    proxy = start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        MCP_ENABLED="true",
        MCP_PROMPTS_DIR=str(prompts_dir),
        DASHBOARD_API_KEY=KEY,
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config"),
        "ANTHROPIC_BASE_URL": proxy.url,
        "ANTHROPIC_API_KEY": DEFAULT_API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }

    def claude(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLAUDE), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )

    added = claude(
        "mcp", "add", "--transport", "http", "nexus", f"{proxy.url}/mcp", "--header", f"Authorization: Bearer {KEY}"
    )
    assert added.returncode == 0, added.stderr
    ran = claude("-p", "/mcp__nexus__review Python", "--output-format", "json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    turns = [request for request in fake.requests if request.path == "/v1/messages"]
    assert turns, "Claude Code's turn reached upstream"
    blocks = turns[-1].json()["messages"][0]["content"]
    assert {"type": "text", "text": "Review this Python change.\n"} in blocks, "the rendered prompt, a block of its own"
    conversation = _the_inference_request(proxy)
    wait_for(lambda: httpx.get(f"{proxy.url}/api/conversations/{conversation}", headers=API).status_code == 200)

    browser = sign_in(proxy.url, KEY)
    page = browser.get(f"/dashboard/conversations/{conversation}").text

    assert (
        '<dd data-fact="prompt">the MCP prompt <a href="/dashboard/prompts?name=review"><code>review</code></a></dd>'
        in page
    )

    (plain,) = chat(proxy, "Review this Go change.")  # typed, not rendered: no prompt
    wait_for(lambda: httpx.get(f"{proxy.url}/api/conversations/{plain}", headers=API).status_code == 200)
    assert 'data-fact="prompt"' not in browser.get(f"/dashboard/conversations/{plain}").text
    assert browser.get(f"/dashboard/conversations/{uuid.uuid4()}").status_code == 404


def _the_inference_request(proxy: RunningProxy) -> str:
    """Claude Code's one turn (its other calls are probes and side calls), once recorded."""

    def found() -> list[str]:
        listed = httpx.get(f"{proxy.url}/api/requests", params={"request_type": "inference"}, headers=API)
        return [str(item["request_id"]) for item in listed.json()["requests"]]

    wait_for(lambda: bool(found()))
    (request_id,) = found()
    return request_id
