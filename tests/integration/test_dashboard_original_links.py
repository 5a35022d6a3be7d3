"""The original claude-nexus dashboard's URLs on a real proxy: redirected (301) behind the login
to the page showing the same here, ids checked, never off the dashboard."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.test_api_conversations import KEY, chat, wait_until_linked
from tests.support.dashboard import csrf_token, sign_in
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

NAMED = "name: review_change\ndescription: Review a change\ntemplate: |\n  Review this change.\n"


@pytest.fixture
def dashboard(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "team-review.yaml").write_text(NAMED)  # the original's id is the file's base name
    return start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        DASHBOARD_API_KEY=KEY,
        MCP_ENABLED="true",
        MCP_PROMPTS_DIR=str(prompts),
    )


@pytest.fixture
def browser(dashboard: RunningProxy) -> httpx.Client:
    return sign_in(dashboard.url, KEY)


def moved(browser: httpx.Client, path: str, **params: str) -> str:
    response = browser.get(path, params=params)
    assert response.status_code == 301, (path, response.status_code, response.text[:300])
    assert response.headers["cache-control"] == "no-store", "no browser pins the redirect"
    location = response.headers["location"]
    assert location.startswith("/dashboard/"), location
    return location


def test_each_old_url_moves_to_the_page_that_shows_the_same(dashboard: RunningProxy, browser: httpx.Client) -> None:
    ids = chat(dashboard, "Plan the migration.", "And the rollback?")
    wait_until_linked(dashboard, {ids[0]: ids}, timeout=2.0)
    conversation, request = ids[0], ids[1]

    assert moved(browser, f"/dashboard/conversation/{conversation}") == f"/dashboard/conversations/{conversation}"
    timeline = moved(browser, f"/dashboard/conversation/{conversation.upper()}", view="timeline", branch="main")
    assert timeline == f"/dashboard/conversations/{conversation}?view=timeline&branch=main", "the id re-written"
    page = browser.get(timeline)
    assert page.status_code == 200
    assert 'data-view="timeline" aria-current="true"' in page.text
    assert moved(browser, f"/dashboard/conversation/{conversation}", view="graph") == (
        f"/dashboard/conversations/{conversation}"
    ), "a view we do not have is dropped"
    odd = moved(browser, f"/dashboard/conversation/{conversation}", view="analytics", branch="a&b=c#d")
    assert parse_qs(urlsplit(odd).query) == {"view": ["analytics"], "branch": ["a&b=c#d"]}, "encoded, not spliced"

    assert moved(browser, f"/dashboard/request/{request}") == f"/dashboard/requests/{request}"
    assert browser.get(f"/dashboard/requests/{request}").status_code == 200
    unknown = str(uuid.uuid4())
    assert browser.get(moved(browser, f"/dashboard/request/{unknown}")).status_code == 404, "the page says so"

    assert moved(browser, "/dashboard/token-usage") == "/dashboard/usage"
    usage = moved(browser, "/dashboard/token-usage", accountId="acc_team", domain="team-a.example.com")
    assert usage == "/dashboard/usage?account=acc_team&domain=team-a.example.com"
    assert browser.get(usage).status_code == 200

    messages = moved(browser, f"/dashboard/conversation/{conversation.upper()}/messages")
    assert messages == f"/dashboard/conversations/{conversation}#transcript", "the transcript, on the tree view"
    transcript = browser.get(messages)
    assert transcript.status_code == 200
    assert 'id="transcript"' in transcript.text
    assert "And the rollback?" in transcript.text

    assert moved(browser, "/dashboard/usage/chart") == "/dashboard/usage"
    chart = moved(browser, "/dashboard/usage/chart", domain="team-a.example.com", days="7")
    assert chart == "/dashboard/usage?domain=team-a.example.com&days=7"
    assert browser.get(chart).status_code == 200

    assert moved(browser, "/dashboard/prompts/team-review") == "/dashboard/prompts?name=review_change"
    assert "Review this change." in browser.get("/dashboard/prompts?name=review_change").text
    assert moved(browser, "/dashboard/prompts/nothing-here") == "/dashboard/prompts?name=nothing-here"
    assert browser.get("/dashboard/prompts?name=nothing-here").status_code == 404
    assert browser.get("/dashboard/usage", params={"domain": "x.example", "days": "7"}).status_code == 200, (
        "the original's usage page had the same path and parameters"
    )


def test_bad_ids_get_a_page_that_says_so(browser: httpx.Client) -> None:
    for path, what in (
        ("/dashboard/conversation/not-a-uuid", "not a conversation id"),
        ("/dashboard/conversation/not-a-uuid/messages", "not a conversation id"),
        ("/dashboard/request/12345", "not a request id"),
        (f"/dashboard/prompts/{'x' * 300}", "not a prompt name"),
    ):
        response = browser.get(path)
        assert response.status_code == 400, path
        assert what in response.text
        assert 'aria-label="Pages"' in response.text, "within the layout"
        assert "location" not in response.headers


def test_the_old_urls_need_the_login_and_come_back_with_their_query(dashboard: RunningProxy) -> None:
    with httpx.Client(base_url=dashboard.url) as anonymous:
        answer = anonymous.get("/dashboard/token-usage", params={"accountId": "acc_team"})
        assert answer.status_code == 303
        login = answer.headers["location"]
        assert urlsplit(login).path == "/dashboard/login"
        assert parse_qs(urlsplit(login).query) == {"next": ["/dashboard/token-usage?accountId=acc_team"]}
        form = anonymous.get(login)
        assert 'name="next" value="/dashboard/token-usage?accountId=acc_team"' in form.text
        signed = anonymous.post(
            "/dashboard/login",
            data={
                "key": KEY,
                "next": "/dashboard/token-usage?accountId=acc_team",
                "_csrf_token": csrf_token(form.text),
            },
        )
        assert signed.headers["location"] == "/dashboard/token-usage?accountId=acc_team"
        assert anonymous.get(signed.headers["location"]).headers["location"] == "/dashboard/usage?account=acc_team"


def test_no_old_url_leads_off_the_dashboard(browser: httpx.Client) -> None:
    for path, params in (
        ("/dashboard/token-usage", {"accountId": "//evil.example/x"}),
        ("/dashboard/token-usage", {"accountId": "https://evil.example/"}),
        ("/dashboard/conversation/00000000-0000-0000-0000-000000000000", {"branch": "//evil.example"}),
        ("/dashboard/prompts/%2F%2Fevil.example", {}),
        ("/dashboard/usage/chart", {"domain": "//evil.example/x"}),
        ("/dashboard/conversation/%2F%2Fevil.example/messages", {}),
        ("/dashboard/conversation/..%2F..%2Fapi", {}),  # a decoded slash matches no route: 404
    ):
        response = browser.get(path, params=params)
        location = response.headers.get("location", "")
        assert response.status_code in (301, 400, 404), (path, response.status_code)
        assert not location or urlsplit(location).netloc == "", location
        assert not location or location.startswith("/dashboard/"), location
