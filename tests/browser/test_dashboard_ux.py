"""What a new user looks for in the dashboard (issue 18), in headless Chromium at 1440x900 and on a
phone (390x844, touch): a conversation's transcript beside its graph, each node labelled with its
own turn and opening it on a tap; the request list's path, branch and previews, searched by
prompt text; one cost rounding on every page; the usage tables fitting their cards and the daily
history newest first; the lists as card rows on a phone, never wider than the screen."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.charts import chart_screenshot
from tests.browser.conftest import SCREENSHOTS, no_sideways_scroll, screenshot
from tests.browser.test_dashboard import KEY, sign_in
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    sdk,
    start_proxy,
)
from tests.integration.test_api_usage import insert_past_exchange, past
from tests.support.claude_code_session import Agent, start_subagent
from tests.support.database import rebuild_usage_hourly, wait_for_rows
from tests.support.proxy_server import RunningProxy

FIRST_PROMPT = "Review the service configuration, please."
LAST_PROMPT = "Thanks, raise the timeout to 60 everywhere."
COST = re.compile(r"^-?\$\d{1,3}(,\d{3})*\.\d{2,}$")
DEVICES = ["desktop", "phone"]


class Recorded:
    def __init__(self, proxy: RunningProxy, main: Agent, agents: list[Agent], models: str, count: str) -> None:
        self.proxy, self.main, self.agents, self.models, self.count = proxy, main, agents, models, count

    @property
    def url(self) -> str:
        return f"{self.proxy.url}/dashboard"

    @property
    def conversation(self) -> str:
        return f"{self.url}/conversations/{self.main.request_ids[0]}"


@pytest.fixture
def recorded(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> Recorded:  # noqa: F811
    """A conversation (a tool call, two sub-agents, a thinking answer, a last prompt), a model
    list and a token count, and this account's traffic 3 and 9 days ago."""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    client = sdk(proxy.url)
    main = Agent(client, session_id=str(uuid.uuid4()))
    main.say(FIRST_PROMPT, scenario="tool_use")
    [read] = main.tool_calls()
    main.answer_tools({read.id: "timeout = 30"}, scenario="agents")
    calls = main.tool_calls()
    agents = [start_subagent(main, call) for call in calls]
    main.answer_tools({call.id: "done" for call in calls}, scenario="thinking")
    main.say(LAST_PROMPT)
    models = client.models.with_raw_response.list().headers["x-request-id"]
    count = client.messages.with_raw_response.count_tokens(
        model="claude-sonnet-5", messages=[{"role": "user", "content": "How long is this?"}]
    ).headers["x-request-id"]
    threaded = len(main.request_ids) + sum(len(agent.request_ids) for agent in agents)
    wait_for_rows(database_url, threaded, where="conversation_id IS NOT NULL AND NOT link_pending")
    account = f"127.0.0.1:{proxy.port}"
    now = datetime.now(UTC)
    for days in (3, 9):
        insert_past_exchange(
            database_url, replace(past(now - timedelta(days=days), 2_000, "0.123456789"), domain=account), account
        )
    rebuild_usage_hourly(database_url)
    return Recorded(proxy, main, agents, models, count)


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, "drawn"
    return found


def in_view(page: Page, locator: Locator) -> bool:
    """Whether it shows: below the sticky top bar and above the bottom of the screen."""
    drawn, height = box(locator), page.viewport_size["height"] if page.viewport_size else 0
    return box(page.locator(".topbar"))["y"] + box(page.locator(".topbar"))["height"] <= drawn["y"] < height


def assert_card_row(page: Page, card: Locator, model: str = "model") -> None:
    """A list row as a card on a phone: state, model and cost on its first line, in that
    order, the cost at the right and in view, the table's headings kept for screen readers only."""
    state, name, cost = (box(card.locator(f"[data-col={c}]")) for c in ("state", model, "cost"))
    assert abs(state["y"] - name["y"]) < 8, "one line"
    assert abs(state["y"] - cost["y"]) < 8, "one line"
    assert state["x"] < name["x"] < cost["x"]
    assert cost["x"] + cost["width"] >= box(card)["x"] + box(card)["width"] - 8, "the cost at the right"
    assert cost["x"] + cost["width"] <= page.evaluate("window.innerWidth"), "the cost on the screen"
    expect(card.locator("[data-col=cost]")).to_be_visible()
    assert box(card.locator("xpath=ancestor::table[1]/thead"))["height"] <= 1, "the headings for screen readers only"


# --- the conversation page ----------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_the_transcript_is_beside_the_graph_and_a_tap_opens_a_turn(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(recorded.conversation)
    main = recorded.main.request_ids
    graph, transcript = page.locator(".graph-card"), page.locator("#transcript")
    if device == "desktop":
        assert box(transcript)["x"] >= box(graph)["x"] + box(graph)["width"], "beside the graph"
        assert abs(box(transcript)["y"] - box(graph)["y"]) < 2, "on the same row"
    else:
        assert box(transcript)["y"] > box(graph)["y"] + box(graph)["height"] - 1, "below it on a phone"
    room = page.locator(".conversation-graph").evaluate(
        "f => { const s = getComputedStyle(f);"
        " return f.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }"
    )
    assert box(page.locator(".graph-svg"))["width"] >= room - 1, "the graph fills its card"
    assert room >= box(graph)["width"] - 60, "and the card's width is the graph's"

    # Each node says its own turn: the prompt on the turn's first request, what the others did.
    node = lambda request_id: page.locator(f"a.graph-link[data-step='{request_id}']")  # noqa: E731
    expect(node(main[0]).locator(".node-label")).to_have_text(FIRST_PROMPT)
    expect(node(main[1]).locator(".node-label")).to_have_text("↳ 2 tool calls: Agent (2)")
    expect(node(main[3]).locator(".node-label")).to_have_text(LAST_PROMPT)
    expect(node(main[3]).locator("title")).to_contain_text(f"Turn 4: {LAST_PROMPT}")
    assert FIRST_PROMPT not in (node(main[3]).locator("title").text_content() or ""), "not the conversation's title"
    expect(node(recorded.agents[0].request_ids[0]).locator(".node-label")).to_contain_text("Find every HTTP endpoint")
    expect(page.locator("details.transcript-turn")).to_have_count(4)
    expect(page.locator("details.transcript-turn[open]")).to_have_count(0)
    screenshot(page, f"conversation-transcript-{device}")
    graph.screenshot(path=str(SCREENSHOTS / f"conversation-graph-labels-{device}.png"))

    # A tap on a node (its tap target, a finger's width) opens its turn, marks its request.
    target = node(main[2]).locator(".node-hit")
    assert box(target)["width"] >= 22
    if device == "phone":
        target.tap()
    else:
        target.click()
    turn = page.locator(f"#turn-{main[0]}")
    expect(turn).to_have_attribute("open", "")
    expect(turn).to_have_class(re.compile(r"\bis-current\b"))
    expect(page.locator(f"#step-{main[2]}")).to_have_class(re.compile(r"\bis-current\b"))
    expect(page).to_have_url(re.compile(rf"#turn-{main[0]}$"))
    assert in_view(page, turn.locator("> summary")), "the turn is in view"
    expect(turn.locator(".turn-user-text")).to_have_text(re.compile(rf"User\s*{re.escape(FIRST_PROMPT)}"))
    expect(turn.locator(".transcript-step")).to_have_count(3)
    # Thinking and tool calls are folded; the text is shown; each request opens its page.
    thinking = turn.locator("details.block-thinking")
    expect(thinking).to_have_count(1)
    expect(thinking).not_to_have_attribute("open", "")
    calls = turn.locator("details.block-tool-use")
    expect(calls).to_have_count(3)
    expect(calls.first).not_to_have_attribute("open", "")
    expect(calls.first.locator("summary")).to_have_text("Tool call: Read")
    expect(turn.locator(".block-text").first).to_have_text("I'll read the config file first.")
    expect(turn.locator(f"a[href='/dashboard/requests/{main[2]}']")).to_be_visible()
    screenshot(page, f"conversation-transcript-turn-{device}", full_page=False)  # what the tap brought into view
    thinking.locator("summary").click()
    expect(thinking).to_have_attribute("open", "")

    if device == "phone":
        no_sideways_scroll(page)
    # The view switch still works, and back.
    page.locator("[data-view=timeline]").click()
    expect(page).to_have_url(re.compile(r"view=timeline"))
    expect(page.locator(".timeline-table tbody tr")).to_have_count(len(main) + len(recorded.agents))
    page.locator("[data-view=tree]").click()
    expect(page.locator("#transcript")).to_be_visible()


# --- the request list ---------------------------------------------------------------------------


def row(page: Page, request_id: str) -> Locator:
    return page.locator(f"tr[data-request-id='{request_id}']")


@pytest.mark.parametrize("device", DEVICES)
def test_the_request_list_shows_path_branch_previews_and_finds_prompts(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(f"{recorded.url}/requests")
    main = recorded.main.request_ids
    expect(row(page, recorded.models).locator("[data-col=path]")).to_have_text("GET /v1/models")
    expect(row(page, recorded.count).locator("[data-col=path]")).to_have_text("POST /v1/messages/count_tokens")
    last = row(page, main[3])
    expect(last.locator("[data-col=path]")).to_have_text(re.compile(r"^POST /v1/messages\s+inference$"))
    expect(last.locator("[data-col=conversation] .badge.kind-main")).to_have_text("main")
    expect(row(page, recorded.agents[0].request_ids[0]).locator("[data-col=conversation] .badge")).to_have_text(
        "subtask_1"
    )
    expect(last.locator(".preview-prompt")).to_have_text(LAST_PROMPT)
    expect(last.locator(".preview-answer")).to_contain_text("→ You said: ")
    expect(row(page, main[0]).locator(".preview-answer")).to_have_text(
        "→ I'll read the config file first. · 1 tool call: Read"
    )
    for cost in page.locator("td[data-col=cost]").all_inner_texts():
        assert cost == "—" or COST.match(cost), cost
        significant = cost.lstrip("-$").replace(",", "").replace(".", "").strip("0")
        assert len(significant) <= 4, f"four significant digits at most: {cost}"
    screenshot(page, f"requests-list-{device}")
    if device == "desktop":
        scroll, client = page.locator(".table-wrap").evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert scroll <= client, f"every column in view at 1440 px ({scroll} > {client})"
        expect(row(page, main[3]).locator("[data-col=time] time")).to_have_attribute("title", re.compile(r" UTC$"))
    if device == "phone":
        # A card per row: state, model and cost on its first line, the preview under them.
        assert_card_row(page, last)
        state = box(last.locator("[data-col=state]"))
        preview, time_cell = box(last.locator("[data-col=preview]")), box(last.locator("[data-col=time]"))
        assert preview["y"] >= state["y"] + state["height"] - 1, "the preview under them"
        assert time_cell["y"] >= preview["y"], "then the rest"
        no_sideways_scroll(page)

    # The search finds prompt text (the answers never say "everywhere").
    page.fill("input[name=q]", "EVERYWHERE")
    page.locator("input[name=q]").press("Enter")
    expect(page).to_have_url(re.compile(r"q=EVERYWHERE"))
    expect(page.locator("tr[data-request-id]")).to_have_count(1)
    expect(page.locator("tr[data-request-id]")).to_have_attribute("data-request-id", main[3])
    screenshot(page, f"requests-search-prompt-{device}")


@pytest.mark.parametrize("device", DEVICES)
def test_the_conversation_list_leads_with_state_models_and_cost(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(f"{recorded.url}/conversations")
    first = page.locator(f"tr[data-conversation-id='{recorded.main.request_ids[0]}']")
    expect(first.locator("[data-col=state] .badge")).to_have_text("complete")
    expect(first.locator("[data-col=models]")).to_have_text("claude-sonnet-5")
    cost = first.locator("[data-col=cost]").inner_text()
    assert COST.match(cost), cost
    expect(first.locator(".conversation-title a")).to_have_text(FIRST_PROMPT)
    if device == "phone":
        assert_card_row(page, first, model="models")
        state, title = box(first.locator("[data-col=state]")), box(first.locator(".conversation-title"))
        assert title["y"] >= state["y"] + state["height"] - 1, "then the title"
        no_sideways_scroll(page)
    screenshot(page, f"conversations-list-{device}")


# --- one cost rounding, the usage page ----------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_a_cost_reads_the_same_on_every_page(recorded: Recorded, wide: Page, phone: Page, device: str) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    request_id = recorded.main.request_ids[3]
    shown = {}
    for name, path, cell in (
        ("list", "/requests", f"tr[data-request-id='{request_id}'] [data-col=cost]"),
        ("live", "/live", f"#live-rows tr[data-request-id='{request_id}'] [data-col=cost]"),
        ("detail", f"/requests/{request_id}", "dd[data-fact=cost]"),
    ):
        page.goto(f"{recorded.url}{path}")
        expect(page.locator(cell)).to_be_visible()  # not hidden on a narrow screen
        shown[name] = page.locator(cell).inner_text()
    assert COST.match(shown["list"]), shown
    assert shown["live"] == shown["list"], "Live and the list"
    assert shown["detail"].startswith(shown["list"]), "the request page"
    if device == "phone":
        no_sideways_scroll(page)
    screenshot(page, f"request-cost-{device}")


@pytest.mark.parametrize("device", DEVICES)
def test_the_live_view_leads_with_state_model_and_cost(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(f"{recorded.url}/live")
    expect(page.locator("[data-connection]")).to_have_class(re.compile("connected"))
    recorded.main.say("One more while Live is open.")
    arrived = page.locator(f"#live-rows tr[data-request-id='{recorded.main.request_ids[-1]}']")
    expect(arrived).to_be_visible(timeout=5000)
    for card in (page.locator(f"#live-rows tr[data-request-id='{recorded.main.request_ids[3]}']"), arrived):
        expect(card.locator("[data-col=state] .badge")).to_have_text("complete")
        expect(card.locator("[data-col=model]")).to_have_text("claude-sonnet-5")
        cost = card.locator("[data-col=cost]").inner_text()
        assert COST.match(cost), cost
        if device == "phone":
            assert_card_row(page, card)
    if device == "phone":
        no_sideways_scroll(page)
    screenshot(page, f"live-cards-{device}")


@pytest.mark.parametrize("device", DEVICES)
def test_the_usage_tables_fit_and_the_daily_history_is_newest_first(
    recorded: Recorded, wide: Page, phone: Page, device: str
) -> None:
    page = wide if device == "desktop" else phone
    sign_in(page, recorded.url)
    page.goto(f"{recorded.url}/usage")
    allocation = page.locator("[data-allocation]")
    expect(allocation).to_have_count(3)
    for index in range(3):
        card = allocation.nth(index)
        wrap = card.locator(".table-wrap")
        scroll, client = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
        if device == "desktop":
            assert scroll <= client, f"table {index} fits its card at 1440 px ({scroll} > {client})"
        cost = card.locator("tbody tr").first.locator("[data-col=cost]")
        assert box(cost)["x"] + box(cost)["width"] <= box(card)["x"] + box(card)["width"], "the cost is in view"
        assert COST.match(cost.inner_text()), cost.inner_text()
    today = datetime.now(UTC).date()
    daily = page.locator("table[data-table=daily] tbody tr")
    expect(daily.first).to_have_attribute("data-day", today.isoformat())
    expect(page.locator("tr[data-day]")).to_have_count(3)
    quiet = page.locator("tr.quiet-days")
    expect(quiet).to_have_count(3)
    three, nine = (today - timedelta(days=days) for days in (3, 9))
    after_three, yesterday = (three + timedelta(days=1)).isoformat(), (today - timedelta(days=1)).isoformat()
    expect(quiet.nth(0)).to_have_text(f"2 days without traffic ({after_three} \u2013 {yesterday})")
    expect(daily.nth(2)).to_have_attribute("data-day", three.isoformat())
    expect(quiet.nth(1)).to_contain_text("5 days without traffic (")
    expect(daily.nth(4)).to_have_attribute("data-day", nine.isoformat())
    expect(quiet.nth(2)).to_contain_text("20 days without traffic (")
    if device == "phone":
        no_sideways_scroll(page)
    chart_screenshot(page, f"usage-tables-{device}")


# --- the Prompts page ---------------------------------------------------------------------------

LONG_PROMPT = """\
description: Review a change to the service's configuration files, every setting named and explained
arguments:
  - name: language
    required: true
    description: The language the change is written in
  - name: repository_with_a_long_name
template: |
  Review this {{ language }} change. https://example.com/a/very/long/path/that/does/not/break/anywhere/at/all/0123456789
"""


def test_the_prompts_page_reads_on_a_phone(
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
    tmp_path: Path,
    phone: Page,
) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "review-the-service-configuration-change.yaml").write_text(LONG_PROMPT)
    (folder / "broken.yaml").write_text("template: [unclosed\n")
    proxy = start_proxy(MCP_ENABLED="true", MCP_PROMPTS_DIR=str(folder), DASHBOARD_API_KEY=KEY)
    sign_in(phone, f"{proxy.url}/dashboard")
    phone.goto(f"{proxy.url}/dashboard/prompts")
    listed = phone.locator("table[data-table=prompts] tbody tr")
    expect(listed).to_have_count(2)
    expect(listed.filter(has_text="invalid:")).to_have_count(1)
    description = phone.get_by_text("every setting named and explained")
    expect(description).to_be_visible()
    assert box(description)["x"] + box(description)["width"] <= 390, "the description on the screen"
    no_sideways_scroll(phone)
    screenshot(phone, "prompts-phone")

    phone.locator("table[data-table=prompts] a", has_text="review-the-service-configuration-change").click()
    template = phone.locator("[data-fact=template]")
    expect(template).to_contain_text("Review this {{ language }} change.")
    # The template is read as it is (white space kept) and stays on the screen: a long line
    # wraps rather than widening the page.
    drawn = box(template)
    assert drawn["x"] >= 0
    assert drawn["x"] + drawn["width"] <= 390, "the template on the screen"
    scroll, client = template.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert scroll <= client, "the whole line shown, not behind a sideways scroll"
    font = float(template.evaluate("t => parseFloat(getComputedStyle(t).fontSize)"))
    assert font >= 12, f"readable: {font} px"
    no_sideways_scroll(phone)
    screenshot(phone, "prompt-template-phone")
