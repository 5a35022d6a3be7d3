"""Who gets into the dashboard, and how: key, session cookie, CSRF, headers, roles."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.dashboard import csrf_token, sign_in
from tests.support.database import query
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.processes import ProxyProcess
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-tests"
BODY = {"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
API = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
def dashboard(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def test_pages_need_a_session_and_the_login_sets_a_strict_http_only_cookie(dashboard: RunningProxy) -> None:
    with httpx.Client(base_url=dashboard.url) as browser:
        assert browser.get("/dashboard/").status_code == 303
        form = browser.get("/dashboard/login")
        token = csrf_token(form.text)
        wrong = browser.post("/dashboard/login", data={"key": "guess", "next": "/dashboard/", "_csrf_token": token})
        assert wrong.status_code == 401
        assert "not the dashboard key" in wrong.text
        assert "nexus_dashboard" not in browser.cookies

        right = browser.post("/dashboard/login", data={"key": KEY, "next": "/dashboard/", "_csrf_token": token})

        assert (right.status_code, right.headers["location"]) == (303, "/dashboard/")
        cookie = next(c for c in right.headers.get_list("set-cookie") if c.startswith("nexus_dashboard="))
        assert {"HttpOnly", "SameSite=strict", "Path=/dashboard"} <= {part.strip() for part in cookie.split(";")}
        assert "Secure" not in cookie, "plain http here"
        assert KEY not in cookie, "the cookie is encrypted, it does not carry the key"
        assert browser.get("/dashboard/").status_code == 200


def test_logout_needs_the_csrf_token_and_ends_the_session(dashboard: RunningProxy) -> None:
    browser = sign_in(dashboard.url, KEY)
    page = browser.get("/dashboard/")

    refused = browser.post("/dashboard/logout")
    forged = browser.post("/dashboard/logout", data={"_csrf_token": "0" * 64})
    assert (refused.status_code, forged.status_code) == (403, 403)
    assert browser.get("/dashboard/").status_code == 200, "still signed in"

    done = browser.post("/dashboard/logout", data={"_csrf_token": csrf_token(page.text)})
    assert (done.status_code, done.headers["location"]) == (303, "/dashboard/login")
    assert browser.get("/dashboard/").status_code == 303


def test_get_logout_shows_a_one_click_form_and_changes_nothing(dashboard: RunningProxy) -> None:
    browser = sign_in(dashboard.url, KEY)

    page = browser.get("/dashboard/logout")

    assert page.status_code == 200
    assert '<form method="post" action="/dashboard/logout"' in page.text
    assert browser.get("/dashboard/").status_code == 200, "still signed in after the GET"
    done = browser.post("/dashboard/logout", data={"_csrf_token": csrf_token(page.text)})
    assert (done.status_code, done.headers["location"]) == (303, "/dashboard/login")
    assert browser.get("/dashboard/").status_code == 303
    signed_out = browser.get("/dashboard/logout")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/dashboard/login")


def test_a_page_request_carrying_the_key_is_let_in_for_itself_alone(dashboard: RunningProxy) -> None:
    with httpx.Client(base_url=dashboard.url) as script:
        for headers in ({"x-dashboard-key": KEY}, {"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
            page = script.get("/dashboard/requests", headers=headers)
            assert page.status_code == 200, headers
            assert 'aria-label="Pages"' in page.text, "the page itself"
            assert not any(c.startswith("nexus_dashboard=") for c in page.headers.get_list("set-cookie")), (
                "no session is created for a script"
            )
        assert "nexus_dashboard" not in script.cookies
        assert script.get("/dashboard/requests").status_code == 303, "without the header: the login again"

        wrong = script.get("/dashboard/requests", headers={"x-dashboard-key": f"{KEY}x"})
        assert wrong.status_code == 303
        assert urlsplit(wrong.headers["location"]).path == "/dashboard/login"
        fragment = script.get("/dashboard/requests", headers={"x-dashboard-key": "guess", "hx-request": "true"})
        assert fragment.headers["hx-redirect"].startswith("/dashboard/login"), "as for HTMX without a session"
        assert KEY not in wrong.text
        # Posting still wants the CSRF token (checked before any handler sees the key): a
        # script that posts reads the token from a page it fetched first, as a browser does.
        refused = script.post("/dashboard/logout", headers={"x-dashboard-key": KEY})
        assert refused.status_code == 403


def test_a_login_without_the_csrf_token_is_refused(dashboard: RunningProxy) -> None:
    response = httpx.post(f"{dashboard.url}/dashboard/login", data={"key": KEY, "next": "/dashboard/"})
    assert response.status_code == 403


def test_pages_carry_a_strict_content_security_policy(dashboard: RunningProxy) -> None:
    page = sign_in(dashboard.url, KEY).get("/dashboard/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text, "no inline script for the CSP to block"
    assert " style=" not in page.text, "no inline style either"


def test_the_login_never_redirects_off_the_dashboard(dashboard: RunningProxy) -> None:
    with httpx.Client(base_url=dashboard.url) as browser:
        token = csrf_token(browser.get("/dashboard/login").text)
        for target in ("https://evil.example/", "//evil.example/dashboard", "/dashboard/../api/requests"):
            response = browser.post("/dashboard/login", data={"key": KEY, "next": target, "_csrf_token": token})
            assert response.headers["location"].startswith("/dashboard"), target
            assert "evil" not in response.headers["location"]


def test_cookies_are_secure_behind_an_https_proxy_that_is_trusted(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(
        DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path), DASHBOARD_API_KEY=KEY, TRUST_PROXY_HEADERS="true"
    )
    page = httpx.get(f"{proxy.url}/dashboard/login", headers={"x-forwarded-proto": "https"})
    assert all("Secure" in cookie for cookie in page.headers.get_list("set-cookie"))


def test_without_a_key_the_dashboard_only_says_how_to_set_one_and_the_proxy_serves(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path))
    for path in ("/dashboard/", "/dashboard/login"):
        page = httpx.get(f"{proxy.url}{path}")
        assert page.status_code == 503
        assert "DASHBOARD_API_KEY" in page.text
    assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=API).status_code == 200


def test_a_generated_key_is_kept_private_printed_once_and_works(
    fake: FakeAnthropic, tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "data"
    env = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "true", "DATABASE_URL": database_url,
           "NEXUS_DATA_DIR": str(data), "DASHBOARD_GENERATE_KEY": "true", "LOG_FORMAT": "text"}  # fmt: skip
    outputs = []
    for _ in range(2):
        proxy = ProxyProcess(cwd=tmp_path, env=env).wait_ready(timeout=60)
        try:
            key = (data / "dashboard-api-key").read_text().strip()
            sign_in(proxy.url, key).close()
        finally:
            outputs.append(proxy.stop())

    assert outputs[0].count(key) == 1, "shown on the first start"
    assert key not in outputs[1], "and never again"
    for name in ("dashboard-api-key", "dashboard-session-secret"):
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600


def test_roles_split_the_proxy_and_the_dashboard(fake: FakeAnthropic, tmp_path: Path, database_url: str) -> None:
    env = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "true", "DATABASE_URL": database_url,
           "NEXUS_DATA_DIR": str(tmp_path), "DASHBOARD_API_KEY": KEY}  # fmt: skip
    proxy_only = ProxyProcess(cwd=tmp_path, env=env, args=("--role", "proxy")).wait_ready(timeout=60)
    dashboard_only = ProxyProcess(cwd=tmp_path, env=env, args=("--role", "dashboard")).wait_ready(timeout=60)
    try:
        assert httpx.get(f"{proxy_only.url}/dashboard/login").status_code == 404
        assert httpx.post(f"{proxy_only.url}/v1/messages", json=BODY, headers=API).status_code == 200
        assert httpx.post(f"{dashboard_only.url}/v1/messages", json=BODY, headers=API).status_code == 404
        assert sign_in(dashboard_only.url, KEY).get("/dashboard/").status_code == 200
    finally:
        proxy_only.stop()
        dashboard_only.stop()


def test_the_dashboard_alone_reads_through_a_read_only_role(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "proxy"))
    assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=API).status_code == 200
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    for statement in (
        f"CREATE ROLE {reader} LOGIN",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
    ):
        query(database_url, statement)
    parts = urlsplit(database_url)
    read_only = urlunsplit(parts._replace(netloc=f"{reader}@{parts.hostname or ''}"))
    env = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "true", "DASHBOARD_DATABASE_URL": read_only,
           "NEXUS_DATA_DIR": str(tmp_path / "dashboard"), "DASHBOARD_API_KEY": KEY}  # fmt: skip
    dashboard_only = ProxyProcess(cwd=tmp_path, env=env, args=("--role", "dashboard")).wait_ready(timeout=60)
    try:
        browser = sign_in(dashboard_only.url, KEY)
        listed = browser.get("/dashboard/requests")
        assert listed.status_code == 200
        assert 'data-total="1"' in listed.text, "the proxy's request, read with SELECT rights only"
        assert 'href="/docs"' in listed.text, "every page links the API docs"
        assert not (tmp_path / "dashboard" / "postgres").exists(), "no embedded server was started"
        # The read-only management API, its docs and /health are served here too.
        key = {"x-api-key": KEY}
        api = httpx.get(f"{dashboard_only.url}/api/requests", headers=key)
        assert (api.status_code, api.json()["total"]) == (200, 1)
        health = httpx.get(f"{dashboard_only.url}/health").json()
        assert (health["status"], health["checks"]["database"]["status"]) == ("ok", "ok")
        assert httpx.get(f"{dashboard_only.url}/health/live").status_code == 200
        schema = httpx.get(f"{dashboard_only.url}/docs/openapi.json")
        assert "/api/requests" in schema.json()["paths"]
        assert httpx.get(f"{dashboard_only.url}/docs").status_code == 200
        conversation = str(uuid.uuid4())
        write = httpx.post(
            f"{dashboard_only.url}/api/analyses", json={"conversationId": conversation, "branchId": "main"}, headers=key
        )
        assert write.status_code == 405
        assert "read-only dashboard process" in write.json()["error"]["message"]
        assert httpx.post(f"{dashboard_only.url}/api/analyses", json={}).status_code == 401, "the key comes first"
    finally:
        output = dashboard_only.stop()
    assert "permission denied" not in output
