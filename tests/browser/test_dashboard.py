"""The dashboard in headless Chromium, with traffic recorded through the proxy during the test."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from tests.browser.charts import assert_draws_its_data, canvas, chart_screenshot, drawn
from tests.browser.conftest import screenshot, watch
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    sdk,
    start_proxy,
)
from tests.support.claude_code_session import Agent, start_subagent
from tests.support.database import query
from tests.support.proxy_server import RunningProxy
from tests.support.usage_history import seed_history

KEY = "browser-dashboard-key"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


class Recorded:
    def __init__(self, proxy: RunningProxy, main: Agent, agents: list[Agent], xss: Agent) -> None:
        self.proxy = proxy
        self.main = main
        self.agents = agents
        self.xss = xss

    @property
    def url(self) -> str:
        return f"{self.proxy.url}/dashboard"


@pytest.fixture
def recorded(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> Recorded:  # noqa: F811
    """A proxy with its dashboard, and a conversation with tools and two sub-agents in it."""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    client = sdk(proxy.url)
    main = Agent(client, session_id=str(uuid.uuid4()))
    main.say("Review the service configuration, please.", scenario="tool_use")
    [read] = main.tool_calls()
    main.answer_tools({read.id: "timeout = 30"}, scenario="agents")
    calls = main.tool_calls()
    agents = [start_subagent(main, call) for call in calls]
    main.answer_tools({call.id: "done" for call in calls}, scenario="thinking")
    xss = Agent(client, session_id=str(uuid.uuid4()))
    xss.say(XSS)
    ids = main.request_ids + xss.request_ids + [i for agent in agents for i in agent.request_ids]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = query(
            database_url, "SELECT count(*) AS n FROM exchanges WHERE conversation_id IS NOT NULL AND NOT link_pending"
        )
        if rows[0]["n"] == len(ids):
            break
        time.sleep(0.05)
    return Recorded(proxy, main, agents, xss)


@pytest.fixture
def watched(page: Page) -> Iterator[Page]:
    """The page, watched; HTTP error statuses are these tests' own business."""
    yield from watch(page, http_errors=True)


def sign_in(page: Page, base: str, key: str = KEY) -> None:
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_login_logout_and_a_wrong_key(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url, key="not-the-key")
    expect(watched.get_by_role("alert")).to_contain_text("not the dashboard key")
    screenshot(watched, "login-refused")

    watched.fill("#key", KEY)
    watched.click("button[type=submit]")
    expect(watched.locator("h1")).to_contain_text("Overview")

    watched.get_by_role("button", name="Log out").click()
    expect(watched).to_have_url(re.compile(r"/dashboard/login"))
    watched.goto(f"{recorded.url}/requests")
    expect(watched).to_have_url(re.compile(r"/dashboard/login"))


def test_a_form_posted_without_its_csrf_token_is_refused(recorded: Recorded, page: Page) -> None:
    sign_in(page, recorded.url)
    expect(page.locator("h1")).to_contain_text("Overview")

    page.evaluate(
        "document.querySelector('form[action=\"/dashboard/logout\"] input[name=_csrf_token]').value = 'forged'"
    )
    with page.expect_response(re.compile(r"/dashboard/logout")) as posted:
        page.get_by_role("button", name="Log out").click()

    assert posted.value.status == 403
    page.goto(f"{recorded.url}/")
    expect(page.locator("h1")).to_contain_text("Overview"), "still signed in: the forged logout did nothing"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_renders_recorded_traffic(
    recorded: Recorded,
    database_url: str,  # noqa: F811
    watched: Page,
    phone_page: Page,
    device: str,
) -> None:
    seed_history(database_url, datetime.now(UTC), domain="history.example")  # hours and days old
    page = watched if device == "desktop" else phone_page
    sign_in(page, recorded.url)
    turn = recorded.main.request_ids[2]  # after the sub-agents: their Agent calls, results and a thinking answer

    page.goto(f"{recorded.url}/")
    expect(page.locator("[data-metric=requests]")).not_to_have_text("0")
    expect(page.locator("canvas[data-chart]")).to_have_count(4)
    for name in ("requests", "tokens", "models", "types"):
        assert_draws_its_data(drawn(page, canvas(page, name)), f"overview {name}")
    chart_screenshot(page, f"overview-{device}")

    page.goto(f"{recorded.url}/requests?domain=127.0.0.1%3A{recorded.proxy.port}")
    expect(page.locator("table tbody tr")).to_have_count(6)
    screenshot(page, f"requests-{device}")

    page.goto(f"{recorded.url}/requests/{turn}")
    expect(page.locator(".block-tool-use").filter(has_text="Agent")).to_have_count(2)
    expect(page.locator(".block-tool-result")).to_have_count(3)
    thinking = page.locator("details.block-thinking")
    expect(thinking).to_have_count(1)
    expect(thinking).not_to_have_attribute("open", "")
    screenshot(page, f"request-detail-{device}")

    page.goto(f"{recorded.url}/conversations")
    expect(page.get_by_role("link", name=re.compile("Review the service configuration"))).to_be_visible()
    screenshot(page, f"conversations-{device}")

    page.goto(f"{recorded.url}/conversations/{recorded.main.request_ids[0]}")
    expect(page.locator("svg .node")).to_have_count(5)
    screenshot(page, f"conversation-detail-{device}")

    page.goto(f"{recorded.url}/usage")
    expect(page.locator("h1")).to_contain_text("Usage")
    for name in ("daily", "hourly"):
        assert_draws_its_data(drawn(page, canvas(page, name)), f"usage {name}")
    chart_screenshot(page, f"usage-{device}")

    page.goto(f"{recorded.url}/live")
    expect(page.locator("[data-connection]")).to_have_class(re.compile("connected"))
    screenshot(page, f"live-{device}")
    if device == "phone":
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, "no sideways scrolling on a phone"


def test_the_conversation_graph_shows_each_sub_agent_on_its_own_branch(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url)
    watched.goto(f"{recorded.url}/conversations/{recorded.main.request_ids[0]}")

    subtasks = watched.locator("svg .node-subtask")
    expect(subtasks).to_have_count(2)
    expect(watched.locator("svg")).to_contain_text("subtask_1")
    expect(watched.locator("svg")).to_contain_text("subtask_2")
    first_agent = recorded.agents[0].request_ids[0]
    watched.locator(f"svg a[data-step='{first_agent}'] .node").click()
    expect(watched).to_have_url(re.compile(f"#turn-{first_agent}$"))
    turn = watched.locator(f"#turn-{first_agent}")
    expect(turn).to_have_attribute("open", "")
    expect(turn.locator(".badge.kind-subtask")).to_have_text("subtask_1")
    turn.locator(f"a[href='/dashboard/requests/{first_agent}']").click()
    expect(watched).to_have_url(re.compile(f"/dashboard/requests/{first_agent}$"))
    screenshot(watched, "conversation-graph-sub-agent")


def test_the_live_view_shows_a_request_made_while_it_is_open(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url)
    watched.goto(f"{recorded.url}/live")
    expect(watched.locator("[data-connection]")).to_have_class(re.compile("connected"))

    recorded.main.say("One more question while the live view is open.")
    new_id = recorded.main.request_ids[-1]

    expect(watched.locator(f"#live-rows a[href$='{new_id}']")).to_be_visible(timeout=3000)
    screenshot(watched, "live-new-request")


def test_a_prompt_carrying_markup_is_shown_as_text(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url)
    for path in (f"/requests/{recorded.xss.request_ids[0]}", "/conversations"):
        watched.goto(f"{recorded.url}{path}")
        expect(watched.locator("main")).to_contain_text("<script>window.__xss=1</script>")
        assert watched.evaluate("window.__xss") is None
    watched.goto(f"{recorded.url}/requests?q={quote(XSS)}")
    expect(watched.get_by_role("searchbox")).to_have_value(XSS)
    assert watched.evaluate("window.__xss") is None
    screenshot(watched, "xss-as-text")


def test_export_downloads_the_rows_on_screen(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url)
    watched.goto(f"{recorded.url}/usage")
    on_screen = [
        (row.locator("[data-col=name]").inner_text(), row.locator("[data-col=requests]").inner_text().replace(",", ""))
        for row in watched.locator("[data-allocation=model] tbody tr").all()
    ]

    with watched.expect_download() as download:
        watched.locator("[data-export=allocation-csv]").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))

    models = [(row["name"], row["requests"]) for row in exported if row["dimension"] == "model"]
    assert models == on_screen
    assert sum(int(count) for _, count in models) == 6, "every recorded request is allocated"


def test_the_dark_theme_applies_and_is_remembered(recorded: Recorded, watched: Page) -> None:
    sign_in(watched, recorded.url)
    toggle = watched.locator("[data-theme-toggle]")
    while watched.evaluate("document.documentElement.dataset.theme") != "dark":
        toggle.click()
    background = watched.evaluate("getComputedStyle(document.body).backgroundColor")
    watched.reload()
    assert watched.evaluate("document.documentElement.dataset.theme") == "dark"
    assert watched.evaluate("getComputedStyle(document.body).backgroundColor") == background != "rgb(246, 247, 249)"
    chart_screenshot(watched, "overview-dark")
