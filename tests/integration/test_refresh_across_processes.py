"""Two proxy processes sharing one credentials directory refresh a token exactly once."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.processes import ProxyProcess

pytestmark = pytest.mark.integration


def test_two_processes_refresh_once_and_both_use_the_new_token(
    fake: FakeAnthropic, tmp_path: Path, credentials_dir: Path
) -> None:
    fake.refresh_tokens["sk-ant-ort01-shared"] = "sk-ant-oat01-old"
    fake.token_delay_ms = 400
    path = credentials_dir / "team.example.credentials.json"
    path.write_text(
        json.dumps(
            {
                "type": "oauth",
                "accountId": "acc_shared",
                "oauth": {
                    "accessToken": "sk-ant-oat01-old",
                    "refreshToken": "sk-ant-ort01-shared",
                    "expiresAt": int(time.time() * 1000) - 1000,
                },
            }
        )
    )
    env = {
        "CLAUDE_API_BASE_URL": fake.url,
        "CREDENTIALS_DIR": str(credentials_dir),
        "CLAUDE_OAUTH_TOKEN_URL": f"{fake.url}/v1/oauth/token",
    }
    proxies = [ProxyProcess(cwd=tmp_path, env=env) for _ in range(2)]
    try:
        for proxy in proxies:
            proxy.wait_ready()
        body = {"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}

        def call(index: int) -> int:
            url = proxies[index % 2].url
            headers = {"host": "team.example", "anthropic-version": "2023-06-01"}
            return httpx.post(f"{url}/v1/messages", json=body, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(call, range(6)))
    finally:
        logs = [proxy.stop() for proxy in proxies]
    assert statuses == [200] * 6, logs
    assert len(fake.token_requests) == 1, logs
    saved = json.loads(path.read_text())
    assert saved["accountId"] == "acc_shared"
    messages = [request for request in fake.requests if request.path == "/v1/messages"]
    assert {request.bearer_token for request in messages} == {saved["oauth"]["accessToken"]}
    assert "sk-ant-oat01-" not in "".join(logs), "no token in the logs"
