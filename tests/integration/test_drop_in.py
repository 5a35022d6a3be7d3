"""What a user of the original claude-nexus-proxy carries over: its endpoints (client-setup,
oauth-metrics, CORS preflight), its settings (ENABLE_CLIENT_AUTH, INTERNAL_API_KEY,
X-Dashboard-Key, ENABLE_DASHBOARD) and its console report, through the running app."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.processes import ProxyProcess
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-tests"
BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
VERSION = {"anthropic-version": "2023-06-01"}
PAGE = "https://app.team.example"


def write_credential(directory: Path, name: str, document: dict[str, Any]) -> None:
    (directory / f"{name}.credentials.json").write_text(json.dumps(document))


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    return body


# --- GET /client-setup/{filename} -------------------------------------------------------------


@pytest.fixture
def setup_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "client-setup"
    directory.mkdir()
    (directory / ".claude.json").write_text('{"hasCompletedOnboarding": true}')
    (directory / "install.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "outside.json").write_text('{"secret": true}')
    (directory / "escape.json").symlink_to(tmp_path / "outside.json")
    return directory


def test_client_setup_files_are_served_from_the_configured_directory(
    start_proxy: Callable[..., RunningProxy], setup_dir: Path
) -> None:
    proxy = start_proxy(CLIENT_SETUP_DIR=str(setup_dir))
    served = httpx.get(f"{proxy.url}/client-setup/.claude.json")
    assert served.status_code == 200
    assert served.json() == {"hasCompletedOnboarding": True}
    assert served.headers["content-type"].startswith("application/json")
    assert served.headers["cache-control"] == "no-store"
    script = httpx.get(f"{proxy.url}/client-setup/install.sh")
    assert (script.status_code, script.text) == (200, "#!/bin/sh\necho hi\n")


@pytest.mark.parametrize(
    "name", ["..%2Foutside.json", "%2E%2E%2Foutside.json", "a%2Fb.json", "%2E%2E", "x..json", "a%5Cb.json"]
)
def test_client_setup_names_with_dots_or_slashes_are_refused(
    start_proxy: Callable[..., RunningProxy], setup_dir: Path, name: str
) -> None:
    proxy = start_proxy(CLIENT_SETUP_DIR=str(setup_dir))
    # Sent raw, so no client library normalises the path first.
    with httpx.Client() as client:
        request = client.build_request("GET", f"{proxy.url}/client-setup/x")
        request.url = request.url.copy_with(raw_path=f"/client-setup/{name}".encode())
        response = client.send(request)
    body = assert_anthropic_error(response, 400, "invalid_request_error")
    assert "secret" not in response.text
    assert "'..', '/'" in body["error"]["message"]


def test_client_setup_never_leaves_its_directory_and_is_off_unless_configured(
    start_proxy: Callable[..., RunningProxy], setup_dir: Path
) -> None:
    proxy = start_proxy(CLIENT_SETUP_DIR=str(setup_dir))
    assert_anthropic_error(httpx.get(f"{proxy.url}/client-setup/escape.json"), 404, "not_found_error")
    assert_anthropic_error(httpx.get(f"{proxy.url}/client-setup/missing.json"), 404, "not_found_error")
    unconfigured = start_proxy()
    body = assert_anthropic_error(httpx.get(f"{unconfigured.url}/client-setup/.claude.json"), 404, "not_found_error")
    assert "CLIENT_SETUP_DIR" in body["error"]["message"]


# --- /oauth-metrics and the management API's keys ---------------------------------------------


def test_oauth_metrics_count_the_refreshes_behind_the_api_key(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], credentials_dir: Path
) -> None:
    proxy = start_proxy(DASHBOARD_API_KEY=KEY)
    assert_anthropic_error(httpx.get(f"{proxy.url}/oauth-metrics"), 401, "authentication_error")
    before = httpx.get(f"{proxy.url}/oauth-metrics", headers={"x-api-key": KEY})
    assert before.status_code == 200
    assert {name: before.json()[name] for name in ("attempts", "successes", "failures")} == {
        "attempts": 0,
        "successes": 0,
        "failures": 0,
    }
    fake.refresh_tokens = {"sk-ant-ort01-1": "sk-ant-oat01-old"}
    for domain, refresh in (("team.example", "sk-ant-ort01-1"), ("gone.example", "sk-ant-ort01-revoked")):
        oauth = {"accessToken": "sk-ant-oat01-old", "refreshToken": refresh, "expiresAt": 1}
        write_credential(credentials_dir, domain, {"type": "oauth", "oauth": oauth})
    answered = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers={"host": "team.example", **VERSION})
    assert answered.status_code == 200
    failed = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers={"host": "gone.example", **VERSION})
    assert failed.status_code == 401
    assert len(fake.token_requests) == 2
    after = httpx.get(f"{proxy.url}/oauth-metrics", headers={"x-dashboard-key": KEY}).json()
    assert (after["attempts"], after["successes"], after["failures"]) == (2, 1, 1)
    assert (after["currentActiveRefreshes"], after["currentFailedRefreshes"]) == (0, 1)
    assert set(after) == {
        "attempts",
        "successes",
        "failures",
        "concurrentWaits",
        "totalRefreshTime",
        "currentActiveRefreshes",
        "currentFailedRefreshes",
        "since",
    }
    assert after["totalRefreshTime"] > 0
    assert "sk-ant" not in json.dumps(after)


def test_internal_api_key_stands_in_for_the_dashboard_key_in_every_header(
    start_proxy: Callable[..., RunningProxy],
) -> None:
    proxy = start_proxy(INTERNAL_API_KEY=KEY)
    for headers in ({"x-api-key": KEY}, {"x-dashboard-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert httpx.get(f"{proxy.url}/token-stats", headers=headers).status_code == 200, headers
    wrong = httpx.get(f"{proxy.url}/token-stats", headers={"x-dashboard-key": "nope"})
    body = assert_anthropic_error(wrong, 401, "authentication_error")
    assert "X-Dashboard-Key" in body["error"]["message"]
    assert KEY not in wrong.text


# --- CORS on /v1 ---------------------------------------------------------------------------------


def preflight(proxy: RunningProxy, origin: str, path: str = "/v1/messages") -> httpx.Response:
    return httpx.options(
        f"{proxy.url}{path}",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-api-key, anthropic-version, "
            "anthropic-dangerous-direct-browser-access",
        },
    )


def test_a_preflight_from_an_allowed_origin_is_answered_here_and_never_forwarded(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(CORS_ALLOWED_ORIGINS=f"{PAGE}, http://localhost:5173")
    answer = preflight(proxy, PAGE)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "anthropic-dangerous-direct-browser-access" in answer.headers["access-control-allow-headers"]
    assert answer.headers["access-control-max-age"] == "86400"
    assert answer.headers["vary"].lower() == "origin"
    refused = preflight(proxy, "https://evil.example")
    assert refused.status_code == 204
    assert "access-control-allow-origin" not in refused.headers
    assert fake.requests == [], "no preflight reaches Anthropic"


def test_a_preflight_on_another_v1_path_is_answered_the_same_way(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(CORS_ALLOWED_ORIGINS=PAGE)
    for path in ("/v1/messages/count_tokens", "/v1/models"):
        answer = preflight(proxy, PAGE, path)
        assert answer.status_code == 204, path
        assert answer.headers["access-control-allow-origin"] == PAGE, path
        assert "anthropic-version" in answer.headers["access-control-allow-headers"], path
        refused = preflight(proxy, "https://evil.example", path)
        assert "access-control-allow-origin" not in refused.headers, path
    assert fake.requests == [], "no preflight reaches Anthropic, whatever the path"


def test_answers_to_an_allowed_origin_carry_cors_headers_streams_included(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(CORS_ALLOWED_ORIGINS=PAGE)
    client = anthropic.Anthropic(base_url=proxy.url, api_key=DEFAULT_API_KEY, max_retries=0)
    plain = client.messages.with_raw_response.create(**BODY, extra_headers={"origin": PAGE})  # type: ignore[arg-type]
    assert plain.headers["access-control-allow-origin"] == PAGE
    assert plain.headers["access-control-expose-headers"] == "*"
    with client.messages.with_streaming_response.create(
        **BODY,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"origin": PAGE},
    ) as streamed:
        assert streamed.headers["access-control-allow-origin"] == PAGE
        assert b"message_stop" in b"".join(streamed.iter_bytes())
    other = client.messages.with_raw_response.create(**BODY, extra_headers={"origin": "https://evil.example"})  # type: ignore[arg-type]
    assert "access-control-allow-origin" not in other.headers
    assert other.parse().content, "the request itself is served: CORS is the browser's business"


def test_without_configured_origins_no_answer_allows_a_browser(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy()
    answer = preflight(proxy, PAGE)
    assert answer.status_code == 204
    assert "access-control-allow-origin" not in answer.headers
    headers = {"origin": PAGE, "x-api-key": DEFAULT_API_KEY, **VERSION}
    posted = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=headers)
    assert posted.status_code == 200
    assert "access-control-allow-origin" not in posted.headers


# --- ENABLE_CLIENT_AUTH, ENABLE_DASHBOARD --------------------------------------------------------


def test_enable_client_auth_false_does_not_demand_the_domains_client_key(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], credentials_dir: Path
) -> None:
    fake.api_keys = {"sk-ant-api03-file"}
    document = {"type": "api_key", "api_key": "sk-ant-api03-file", "client_api_key": "cnp_live_team"}
    write_credential(credentials_dir, "team.example", document)
    guarded = start_proxy()
    refused = httpx.post(f"{guarded.url}/v1/messages", json=BODY, headers={"host": "team.example", **VERSION})
    assert_anthropic_error(refused, 401, "authentication_error")
    open_proxy = start_proxy(ENABLE_CLIENT_AUTH="false")
    served = httpx.post(f"{open_proxy.url}/v1/messages", json=BODY, headers={"host": "team.example", **VERSION})
    assert served.status_code == 200
    assert fake.last_request.header("x-api-key") == "sk-ant-api03-file"


def test_enable_dashboard_false_serves_no_dashboard_but_the_api(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(ENABLE_DASHBOARD="false", DASHBOARD_API_KEY=KEY)
    assert httpx.get(f"{proxy.url}/dashboard/login").status_code == 404
    assert httpx.get(f"{proxy.url}/token-stats", headers={"x-api-key": KEY}).status_code == 200
    with_dashboard = start_proxy(DASHBOARD_API_KEY=KEY)
    assert httpx.get(f"{with_dashboard.url}/dashboard/login").status_code == 200


# --- Start-up warnings, the console report and DEBUG in the text log ----------------------------


def test_the_command_warns_of_the_originals_settings_and_logs_debug_details_as_text(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    write_credential(
        credentials,
        "team.example",
        {"type": "api_key", "api_key": "sk-ant-api03-filekey-secret", "client_api_key": "cnp_live_team"},
    )
    (tmp_path / "client-setup").mkdir()
    fake.api_keys = {"sk-ant-api03-filekey-secret"}
    env = {
        "CLAUDE_API_BASE_URL": fake.url,
        "CREDENTIALS_DIR": str(credentials),
        "STORAGE_ENABLED": "false",
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
        "NODE_ENV": "production",
        "DB_HOST": "db.internal",
        "AI_ANALYSIS_ENABLE_SUMMARY": "true",
        "AI_ANALYSIS_TRUNCATE_FIRST_N_TOKENS": "1000",  # the name the original really read
        "SPARK_ENABLED": "",  # empty: not set
        "LOG_FORMAT": "text",
        "DEBUG": "true",
        "TOKEN_REPORT_INTERVAL": "1",
    }
    proxy = ProxyProcess(cwd=tmp_path, env=env)
    try:
        proxy.wait_ready()
        answered = httpx.post(
            f"{proxy.url}/v1/messages",
            json={**BODY, "messages": [{"role": "user", "content": "the debug body"}]},
            headers={"host": "team.example", "x-api-key": "cnp_live_team", **VERSION},
        )
        time.sleep(1.5)  # one report interval
    finally:
        output = proxy.stop()
    assert answered.status_code == 200, output
    assert "NODE_ENV is a setting of the original claude-nexus-proxy that this proxy does not read" in output
    assert "DB_HOST is a setting of the original" in output
    assert "set DATABASE_URL" in output
    assert "AI_ANALYSIS_ENABLE_SUMMARY is a setting of the original" in output
    assert "AI_ANALYSIS_TRUNCATE_FIRST_N_TOKENS is a setting of the original" in output
    assert "never cut a message by it" in output
    assert "SPARK_ENABLED" not in output
    assert "ENABLE_CLIENT_AUTH is not set: the client_api_key of team.example is demanded" in output
    assert "set CLIENT_SETUP_DIR=client-setup" in output
    # DEBUG=true in the text format: headers and the body on lines of their own, keys masked.
    assert "    headers: " in output
    assert "    body: " in output
    assert "the debug body" in output
    assert "sk-ant-api03-filekey-secret" not in output
    assert "cnp_live_team" not in output
    # The console report, in the original's layout.
    report = output[output.index("Token Usage Report - ") :]
    lines = report.splitlines()
    assert lines[1].startswith("====")
    assert lines[3].startswith("----")
    assert lines[2].split()[:4] == ["Domain", "Reqs", "Query", "Infer"]
    assert lines[4].split()[:2] == ["team.example", "1"]
    assert lines[6].split()[:2] == ["TOTAL", "1"]


def test_no_start_up_warning_when_nothing_differs(fake: FakeAnthropic, tmp_path: Path) -> None:
    env = {
        "CLAUDE_API_BASE_URL": fake.url,
        "STORAGE_ENABLED": "false",
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
        "PATH": os.environ.get("PATH", ""),
    }
    proxy = ProxyProcess(cwd=tmp_path, env=env)
    try:
        proxy.wait_ready()
    finally:
        output = proxy.stop()
    assert "claude-nexus-proxy that this proxy does not read" not in output
    assert "ENABLE_CLIENT_AUTH" not in output
