"""The conversation page's timeline and analytics views in headless Chromium, at 1440x900 and on
a phone (390x844), with traffic recorded through the proxy during the test: the view switch,
the branch filter, and the context bar's colour at a seeded 75 % and 95 % of a 200 k window."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import KEY, sign_in
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    sdk,
    start_proxy,
)
from tests.support.claude_code_session import MAIN_SYSTEM, Agent, start_subagent
from tests.support.database import wait_for_rows
from tests.support.proxy_server import RunningProxy

WORD = "lorem "  # the fake counts a token per four bytes: 100,000 words ~ 150 k tokens


class Recorded:
    def __init__(self, proxy: RunningProxy, main: Agent, agents: list[Agent], at_75: str, at_95: str) -> None:
        self.proxy, self.main, self.agents, self.at_75, self.at_95 = proxy, main, agents, at_75, at_95

    @property
    def url(self) -> str:
        return f"{self.proxy.url}/dashboard"

    def conversation(self, conversation_id: str | None = None, **query: str) -> str:
        suffix = "&".join(f"{name}={value}" for name, value in query.items())
        return f"{self.url}/conversations/{conversation_id or self.main.request_ids[0]}" + (
            f"?{suffix}" if suffix else ""
        )


@pytest.fixture
def recorded(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> Recorded:  # noqa: F811
    """A conversation with a tool call and two sub-agents, and two one-request conversations on
    Haiku 4.5 (200 k tokens) filling 75 % and 95 % of its window."""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    client = sdk(proxy.url)
    main = Agent(client, session_id=str(uuid.uuid4()))
    main.say("Review the service configuration, please.", scenario="tool_use")
    [read] = main.tool_calls()
    main.answer_tools({read.id: "timeout = 30"}, scenario="agents")
    calls = main.tool_calls()
    agents = [start_subagent(main, call) for call in calls]
    main.answer_tools({call.id: "done" for call in calls})
    main.say("Thanks, raise the timeout to 60.")
    filled = []
    for words in (100_000, 126_666):
        sent = client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=16,
            system=MAIN_SYSTEM,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": WORD * words}],
        )
        filled.append(sent.headers["x-request-id"])
    expected = len(main.request_ids) + sum(len(agent.request_ids) for agent in agents) + len(filled)
    wait_for_rows(database_url, expected, where="conversation_id IS NOT NULL AND NOT link_pending")
    return Recorded(proxy, main, agents, *filled)


def fill_colour(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.querySelector('.context-fill')).fill"))


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_timeline_and_the_analytics_are_drawn(recorded: Recorded, wide: Page, phone: Page, device: str) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(recorded.conversation())

    page.locator("[data-view=timeline]").click()
    expect(page).to_have_url(re.compile(r"view=timeline"))
    rows = page.locator(".timeline-table tbody tr")
    expect(rows).to_have_count(len(recorded.main.request_ids) + len(recorded.agents))
    expect(page.locator(".timeline-table tr[data-step='tool results']")).to_have_count(2)
    expect(rows.first.locator("[data-col=answer]")).to_have_text("1 tool call: Read")
    expect(page.locator(".timeline-table .badge.kind-subtask")).to_have_count(2)
    screenshot(page, f"conversation-timeline-{device}")

    page.select_option("#branch-select", "subtask_1")  # data-autosubmit: app.js submits the form
    expect(page).to_have_url(re.compile(r"branch=subtask_1"))
    expect(rows).to_have_count(1)

    page.locator("[data-view=analytics]").click()
    expect(page).to_have_url(re.compile(r"view=analytics&branch=subtask_1"))
    page.select_option("#branch-select", "main")
    expect(page.locator("#analytics")).to_have_attribute("data-analytics-branch", "main")
    expect(page.locator("[data-metric=tool-calls] .value")).to_have_text("3")
    expect(page.locator("[data-metric=prompts] .value")).to_have_text("2")
    expect(page.locator("[data-metric=reply-time] .note")).to_have_text("2 of 2 turns answered")
    expect(page.locator(".tools-table tbody tr")).to_have_count(2)
    expect(page.locator(".tools-table tr[data-tool=Agent] [data-col=calls]")).to_have_text("2")
    expect(page.locator(".context-meter")).to_have_class(re.compile(r"\bcontext-ok\b"))
    screenshot(page, f"conversation-analytics-{device}")
    if device == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "no sideways scrolling"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_context_bar_turns_yellow_at_75_and_red_at_95_percent(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    colours = {}
    for name, conversation, level in (("75", recorded.at_75, "warn"), ("95", recorded.at_95, "full")):
        page.goto(recorded.conversation(conversation, view="analytics"))
        meter = page.locator(".context-meter")
        expect(meter).to_have_class(re.compile(rf"\bcontext-{level}\b"))
        expect(meter.locator(".context-figures strong")).to_have_text(re.compile(rf"^{name}\.\d %$"))
        width = float(page.locator(".context-fill").get_attribute("width") or "0")
        assert abs(width - int(name)) < 0.5, "the bar is drawn to the percentage"
        drawn = page.locator(".context-bar").bounding_box()
        assert drawn is not None
        assert drawn["width"] > 200, "wide enough to read"
        colours[level] = fill_colour(page)
        screenshot(page, f"conversation-context-{name}-{device}")
    assert colours["warn"] == "rgb(202, 138, 4)", "yellow"
    assert colours["full"] == "rgb(192, 38, 45)", "red (the theme's error colour)"
