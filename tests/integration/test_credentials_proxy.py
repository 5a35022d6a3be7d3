"""Credential selection, client keys and OAuth refresh, through the running proxy."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
VERSION = {"anthropic-version": "2023-06-01"}
FILE_KEY = "sk-ant-api03-from-the-file"


def write_credential(directory: Path, name: str, document: dict[str, Any]) -> Path:
    path = directory / f"{name}.credentials.json"
    path.write_text(json.dumps(document))
    return path


def post(proxy: RunningProxy, *, host: str = "team.example", **headers: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers={"host": host, **VERSION, **headers})


def oauth_file(*, access: str, refresh: str, expires_at_ms: int) -> dict[str, Any]:
    return {
        "type": "oauth",
        "accountId": "acc_team",
        "client_api_key": "cnp_live_team",
        "slack": {"webhook_url": "https://hooks.slack.example/x", "channel": "#claude"},
        "oauth": {
            "accessToken": access,
            "refreshToken": refresh,
            "expiresAt": expires_at_ms,
            "scopes": ["user:inference"],
            "isMax": True,
        },
    }


def test_a_domain_api_key_replaces_whatever_the_client_sent(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.api_keys = {FILE_KEY}
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": FILE_KEY})
    response = post(proxy, authorization="Bearer client-token", **{"x-api-key": "sk-client"})
    assert response.status_code == 200
    sent = fake.last_request
    assert sent.header_values("x-api-key") == [FILE_KEY]
    assert sent.header("authorization") is None


def test_the_file_with_the_port_as_sent_wins_then_the_bare_domain(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.api_keys = {"sk-port", "sk-domain"}
    write_credential(credentials_dir, "team.example:8443", {"type": "api_key", "api_key": "sk-port"})
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": "sk-domain"})
    assert post(proxy, host="team.example:8443").status_code == 200
    assert fake.last_request.header("x-api-key") == "sk-port"
    assert post(proxy, host="Team.Example:9000").status_code == 200
    assert fake.last_request.header("x-api-key") == "sk-domain"


def test_without_a_file_the_clients_key_then_the_default_key_is_used(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    fake.api_keys = {DEFAULT_API_KEY, "sk-ant-api03-default"}
    proxy = start_proxy(CLAUDE_API_KEY="sk-ant-api03-default")
    assert post(proxy, **{"x-api-key": DEFAULT_API_KEY}).status_code == 200
    assert fake.last_request.header("x-api-key") == DEFAULT_API_KEY
    assert post(proxy).status_code == 200
    assert fake.last_request.header("x-api-key") == "sk-ant-api03-default"


def test_a_client_key_is_required_when_the_file_sets_one(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.api_keys = {FILE_KEY}
    write_credential(
        credentials_dir, "team.example", {"type": "api_key", "api_key": FILE_KEY, "client_api_key": "cnp_live_abc"}
    )
    assert post(proxy).status_code == 401
    assert post(proxy, **{"x-api-key": "cnp_live_wrong"}).status_code == 401
    refused = post(proxy, authorization="Bearer sk-ant-api03-something")
    assert refused.json()["error"] == {
        "type": "authentication_error",
        "message": "Invalid or missing client API key for team.example",
    }
    assert len(fake.requests) == 0
    assert post(proxy, authorization="Bearer cnp_live_abc").status_code == 200
    assert post(proxy, **{"x-api-key": "cnp_live_abc"}).status_code == 200
    assert [request.header("x-api-key") for request in fake.requests] == [FILE_KEY, FILE_KEY]


def test_files_outside_the_directory_cannot_be_reached(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.api_keys = {"sk-outside"}
    write_credential(credentials_dir.parent, "outside", {"type": "api_key", "api_key": "sk-outside"})
    for host in ("../outside", "..%2foutside", "credentials/../outside", "..", "outside/..", "./outside"):
        assert post(proxy, host=host).status_code in (400, 401)
    assert fake.requests == []


def test_edits_to_a_credential_file_apply_to_the_next_request(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.api_keys = {"sk-one", "sk-two-longer"}
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": "sk-one"})
    assert post(proxy).status_code == 200
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": "sk-two-longer"})
    assert post(proxy).status_code == 200
    assert [request.header("x-api-key") for request in fake.requests] == ["sk-one", "sk-two-longer"]


def test_a_malformed_file_gets_401_for_its_domain_only_and_a_clear_log(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.api_keys = {FILE_KEY}
    (credentials_dir / "team.example.credentials.json").write_text('{"type": "api_key", "api_key": "sk-ant-secret"')
    write_credential(credentials_dir, "other.example", {"type": "api_key", "api_key": FILE_KEY})
    with caplog.at_level(logging.ERROR):
        broken = post(proxy, **{"x-api-key": DEFAULT_API_KEY})
        assert post(proxy, host="other.example").status_code == 200
    assert broken.status_code == 401
    assert "invalid" in broken.json()["error"]["message"]
    assert "team.example.credentials.json" in caplog.text
    assert "sk-ant-secret" not in caplog.text
    assert "sk-ant-secret" not in broken.text


def test_forwarded_host_counts_only_when_trusted(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], credentials_dir: Path
) -> None:
    fake.api_keys = {FILE_KEY}
    write_credential(credentials_dir, "team.example", {"type": "api_key", "api_key": FILE_KEY})
    forwarded = {"x-forwarded-host": "team.example, inner.example"}
    untrusted = start_proxy()
    assert post(untrusted, host="elsewhere.example", **forwarded).status_code == 401
    trusted = start_proxy(TRUST_PROXY_HEADERS="true")
    assert post(trusted, host="elsewhere.example", **forwarded).status_code == 200


def test_oauth_files_send_a_bearer_with_the_oauth_beta_appended_once(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.oauth_tokens["sk-ant-oat01-valid"] = float("inf")
    write_credential(
        credentials_dir,
        "team.example",
        oauth_file(
            access="sk-ant-oat01-valid", refresh="sk-ant-ort01-r", expires_at_ms=int(time.time() * 1000) + 3_600_000
        ),
    )
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert post(proxy, authorization="Bearer cnp_live_team", **{"anthropic-beta": beta}).status_code == 200
    sent = fake.last_request
    assert sent.header_values("authorization") == ["Bearer sk-ant-oat01-valid"]
    assert sent.header_values("anthropic-beta") == [beta + ",oauth-2025-04-20"]
    assert fake.token_requests == []


def test_an_expiring_token_is_refreshed_once_for_concurrent_requests_and_saved(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    fake.refresh_tokens["sk-ant-ort01-first"] = "sk-ant-oat01-old"
    fake.token_delay_ms = 200
    path = write_credential(
        credentials_dir,
        "team.example",
        oauth_file(
            access="sk-ant-oat01-old", refresh="sk-ant-ort01-first", expires_at_ms=int(time.time() * 1000) + 30_000
        ),
    )
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: post(proxy, **{"x-api-key": "cnp_live_team"}).status_code, range(8)))
    assert statuses == [200] * 8
    assert len(fake.token_requests) == 1
    assert fake.token_requests[0]["refresh_token"] == "sk-ant-ort01-first"
    assert fake.token_requests[0]["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    saved = json.loads(path.read_text())
    new_access = saved["oauth"]["accessToken"]
    assert new_access != "sk-ant-oat01-old"
    messages = [request for request in fake.requests if request.path == "/v1/messages"]
    assert {request.bearer_token for request in messages} == {new_access}
    assert saved["oauth"]["refreshToken"] != "sk-ant-ort01-first", "the rotated refresh token is kept"
    assert saved["oauth"]["expiresAt"] > time.time() * 1000 + 28_000_000
    assert (saved["accountId"], saved["client_api_key"], saved["slack"]["channel"]) == (
        "acc_team",
        "cnp_live_team",
        "#claude",
    )


def test_a_failed_refresh_is_a_clear_401_and_is_not_retried_in_a_storm(
    fake: FakeAnthropic, proxy: RunningProxy, credentials_dir: Path
) -> None:
    write_credential(
        credentials_dir,
        "team.example",
        oauth_file(
            access="sk-ant-oat01-old", refresh="sk-ant-ort01-unknown", expires_at_ms=int(time.time() * 1000) - 1
        ),
    )
    first = post(proxy, **{"x-api-key": "cnp_live_team"})
    assert first.status_code == 401
    assert "invalid_grant" in first.json()["error"]["message"]
    assert "sk-ant-ort01-unknown" not in first.text
    for _ in range(5):
        assert post(proxy, **{"x-api-key": "cnp_live_team"}).status_code == 401
    assert len(fake.token_requests) == 1
    assert [request.path for request in fake.requests] == ["/v1/oauth/token"]
