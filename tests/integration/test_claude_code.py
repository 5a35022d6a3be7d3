"""Real Claude Code pointed at the proxy (``ANTHROPIC_BASE_URL``), as its users run it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import query
from tests.support.fake_anthropic import DEFAULT_API_KEY, OAUTH_BETA, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

CLAUDE = Path(__file__).resolve().parents[2] / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"


@pytest.fixture
def claude(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code is not installed at {CLAUDE}: `make test` installs it")

    def run(
        prompt: str,
        *,
        base_url: str,
        api_key: str,
        args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
        succeed: bool = True,
    ) -> dict[str, Any]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config"),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            **(extra_env or {}),
        }
        done = subprocess.run(
            [str(CLAUDE), "-p", prompt, "--output-format", "json", "--bare", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0 or not succeed, done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    return run


def test_claude_code_gets_its_answer_through_the_proxy(
    fake: FakeAnthropic, proxy: RunningProxy, claude: Callable[..., dict[str, Any]]
) -> None:
    result = claude("say hi", base_url=proxy.url, api_key=DEFAULT_API_KEY)
    assert result["is_error"] is False
    assert result["result"] == "You said: say hi"
    turns = [request for request in fake.requests if request.path == "/v1/messages"]
    assert turns, "Claude Code's turn reached upstream"
    turn = turns[-1]
    assert turn.query_string == "beta=true"
    assert turn.json()["stream"] is True
    assert turn.header("x-api-key") == DEFAULT_API_KEY
    assert (turn.header("user-agent") or "").startswith("claude-cli/")
    assert turn.header("x-claude-code-session-id") == result["session_id"]
    assert "claude-code-20250219" in turn.betas
    assert result["usage"]["output_tokens"] > 0


def test_claude_code_with_a_client_key_runs_on_the_domains_oauth_login(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path, claude: Callable[..., dict[str, Any]]
) -> None:
    fake.oauth_tokens["sk-ant-oat01-team"] = float("inf")
    (credentials_dir / f"127.0.0.1:{proxy.port}.credentials.json").write_text(
        json.dumps(
            {
                "type": "oauth",
                "accountId": "acc_team",
                "client_api_key": "cnp_live_team_key",
                "oauth": {
                    "accessToken": "sk-ant-oat01-team",
                    "refreshToken": "sk-ant-ort01-team",
                    "expiresAt": int(time.time() * 1000) + 3_600_000,
                },
            }
        )
    )
    result = claude("say hi", base_url=proxy.url, api_key="cnp_live_team_key")
    assert result["is_error"] is False
    turn = [request for request in fake.requests if request.path == "/v1/messages"][-1]
    assert turn.header("x-api-key") is None
    assert turn.bearer_token == "sk-ant-oat01-team"
    assert turn.betas.count(OAUTH_BETA) == 1
    assert "claude-code-20250219" in turn.betas


def test_claude_code_sessions_are_linked_into_one_conversation(
    fake: FakeAnthropic,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    claude: Callable[..., dict[str, Any]],
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    # The fake answers every turn with a Read tool call; Claude Code runs it and sends the result.
    tools = {"ANTHROPIC_CUSTOM_HEADERS": "x-fake-scenario: tool_use"}
    first = claude(
        "check the config",
        base_url=proxy.url,
        api_key=DEFAULT_API_KEY,
        args=("--max-turns", "2"),
        extra_env=tools,
        succeed=False,
    )
    assert first["terminal_reason"] == "max_turns"
    resumed = claude("thanks", base_url=proxy.url, api_key=DEFAULT_API_KEY, args=("--resume", first["session_id"]))
    assert resumed["result"] == "You said: thanks"
    sent = sum(1 for request in fake.requests if request.path == "/v1/messages")

    rows = _linked_rows(database_url, sent)

    inference = [row for row in rows if row["request_type"] == "inference"]
    assert len(inference) >= 3, "two tool turns and the resumed turn"
    assert len({row["conversation_id"] for row in inference}) == 1
    assert all(row["conversation_id"] is None for row in rows if row["request_type"] != "inference")
    root, *rest = inference
    assert (root["parent_request_id"], root["link_method"]) == (None, "new")
    assert [row["parent_request_id"] for row in rest] == [row["id"] for row in inference[:-1]]
    assert {row["branch_id"] for row in inference} == {"main"}
    assert first["session_id"] in {row["session_id"] for row in inference}


def _linked_rows(url: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = query(url, "SELECT * FROM exchanges WHERE path = '/v1/messages' ORDER BY ts, id")
        if (len(rows) >= count and not any(row["link_pending"] for row in rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
