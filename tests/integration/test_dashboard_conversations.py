"""The dashboard's conversation pages over a real proxy and database: the list (search, filters,
htmx partial) and one conversation drawn as a graph with its branches and sub-agents."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexus.entrypoints.dashboard.formatting import money
from tests.integration.test_api_conversations import KEY, Review, chat, review, tree, wait_until_linked
from tests.support.dashboard import sign_in
from tests.support.database import query
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def api_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


@pytest.fixture
def browser(api_proxy: RunningProxy) -> httpx.Client:
    return sign_in(api_proxy.url, KEY)


def row(page: str, conversation_id: str) -> str:
    match = re.search(rf'<tr data-conversation-id="{conversation_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {conversation_id}"
    return match.group(1)


def cell(fragment: str, column: str) -> str:
    match = re.search(rf'data-col="{column}"[^>]*>(.*?)</td>', fragment, re.S)
    assert match, f"no {column} cell"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def listed(page: str) -> list[str]:
    return re.findall(r'<tr data-conversation-id="([^"]+)"', page)


def svg(page: str) -> str:
    match = re.search(r"<svg\b.*?</svg>", page, re.S)
    assert match, "the page draws the graph"
    return match.group(0)


def wait_for(check: Callable[[], bool], *, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(0.05)


def test_the_list_shows_each_conversation_with_its_counts_and_cost(
    api_proxy: RunningProxy, browser: httpx.Client
) -> None:
    traffic = review(api_proxy)
    other = chat(api_proxy, "What time is it in Tokyo?", "And in Lima?")
    wait_until_linked(api_proxy, {traffic.root: traffic.ids, other[0]: other}, timeout=2.0)
    summary = tree(api_proxy, traffic.root)["conversation"]

    response = browser.get("/dashboard/conversations")

    assert response.status_code == 200
    page = response.text
    assert 'data-total="2"' in page
    assert listed(page) == [other[0], traffic.root], "most recently active first"
    first = row(page, traffic.root)
    assert f'href="/dashboard/conversations/{traffic.root}"' in first
    assert "Review the service configuration, please." in first
    counts = {column: cell(first, column) for column in ("requests", "branches", "subagents", "compactions")}
    assert counts == {"requests": "12", "branches": "6", "subagents": "3", "compactions": "1"}
    assert cell(first, "tokens") == f"{summary['input_tokens']:,} / {summary['output_tokens']:,}"
    assert cell(first, "cost") == money(summary["cost_usd"])
    assert Decimal(summary["cost_usd"]) > 0
    assert cell(first, "models") == ", ".join(summary["models"])
    assert cell(first, "state") == "complete", "the state of its latest request"
    assert '<span class="badge state-complete">' in first
    assert (cell(row(page, other[0]), "requests"), cell(row(page, other[0]), "branches")) == ("2", "1")
    assert "<script" not in page.split("<main", 1)[1], "no inline script"
    assert " style=" not in page


def test_the_list_is_searched_by_title_or_id_and_filtered(api_proxy: RunningProxy, browser: httpx.Client) -> None:
    traffic = review(api_proxy)
    other = chat(api_proxy, "What time is it in Tokyo?")
    wait_until_linked(api_proxy, {traffic.root: traffic.ids, other[0]: other}, timeout=2.0)

    def search(**params: Any) -> list[str]:
        response = browser.get("/dashboard/conversations", params=params)
        assert response.status_code == 200, response.text
        return listed(response.text)

    assert search(search="SERVICE config") == [traffic.root]
    assert search(search="tokyo") == [other[0]]
    assert search(search=traffic.nested[1]) == [traffic.root], "a request id finds its conversation"
    assert search(search=f"  {other[0]}  ") == [other[0]], "an id is trimmed"
    assert search(search=str(uuid.uuid4())) == []
    assert search(domain="nobody.example") == []
    assert search(domain=f"127.0.0.1:{api_proxy.port}") == [other[0], traffic.root]
    assert search(until="2000-01-01T00:00") == []
    assert search(since="2000-01-01T00:00", until="2999-01-01T00:00:00Z") == [other[0], traffic.root]
    bad = browser.get("/dashboard/conversations", params={"since": "yesterday", "page": "x"})
    assert bad.status_code == 200
    assert "since is not a date and time" in bad.text, "a bad value is named and ignored"
    assert listed(bad.text) == [other[0], traffic.root]
    beyond = browser.get("/dashboard/conversations", params={"page": 2})
    assert (listed(beyond.text), 'data-total="2"' in beyond.text) == ([], True)

    full = browser.get("/dashboard/conversations", params={"search": "tokyo"}).text
    assert 'hx-get="/dashboard/conversations"' in full
    assert 'name="search" value="tokyo"' in full, "the form shows the search again"
    partial = browser.get("/dashboard/conversations", params={"search": "tokyo"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert listed(partial.text) == [other[0]]
    assert "<html" not in partial.text, "only the results, for htmx to swap"
    assert "<form" not in partial.text
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in browser.get("/dashboard/conversations", headers=restore).text


def test_a_conversation_is_drawn_with_its_branches_and_sub_agents(
    api_proxy: RunningProxy, browser: httpx.Client
) -> None:
    traffic: Review = review(api_proxy)
    wait_until_linked(api_proxy, {traffic.root: traffic.ids}, timeout=2.0)
    whole = tree(api_proxy, traffic.root)

    response = browser.get(f"/dashboard/conversations/{traffic.root}")

    assert response.status_code == 200
    page = response.text
    graph = svg(page)
    steps = re.findall(r'data-step="([0-9a-f-]+)"', graph)
    assert sorted(steps) == sorted(traffic.ids), "one node link per request"
    subtask_requests = len(traffic.first) + len(traffic.second) + len(traffic.nested)
    assert graph.count('class="node node-subtask') == subtask_requests
    assert graph.count('class="lane lane-subtask"') == 3
    assert graph.count('class="lane lane-branch"') == 1
    assert graph.count('class="lane lane-compact"') == 1
    assert "conversation-truncated" not in page

    branches = dict(re.findall(r'<tr data-branch="([^"]+)">(.*?)</tr>', page, re.S))
    shown = {name: (cell(fragment, "kind"), cell(fragment, "parent")) for name, fragment in branches.items()}
    edit = next(name for name in shown if name.startswith("branch_"))
    compact = next(name for name in shown if name.startswith("compact_"))
    assert shown == {
        "main": ("main", "—"),
        "subtask_1": ("subtask", "main"),
        "subtask_2": ("subtask", "main"),
        "subtask_3": ("subtask", "subtask_1"),
        edit: ("branch", "main"),
        compact: ("compact", "main"),
    }
    for branch in whole["branches"]:
        fragment = branches[branch["branch_id"]]
        assert cell(fragment, "requests") == str(branch["request_count"])
        assert cell(fragment, "cost") == money(branch["cost_usd"])
        assert f'href="/dashboard/requests/{branch["first_request_id"]}"' in fragment

    agents = dict(re.findall(r'<tr data-tool-use="([^"]+)">(.*?)</tr>', page, re.S))
    assert set(agents) == set(traffic.calls.values())
    first = next(a for a in whole["subagents"] if a["tool_use_id"] == traffic.calls["first"])
    fragment = agents[traffic.calls["first"]]
    assert cell(fragment, "requests") == str(len(traffic.first) + len(traffic.nested)) == str(first["request_count"])
    assert cell(fragment, "tokens") == f"{first['input_tokens']:,} / {first['output_tokens']:,}"
    assert cell(fragment, "cost") == money(first["cost_usd"])
    assert (cell(fragment, "branch"), cell(fragment, "nested")) == ("subtask_1", "subtask_3")
    assert "Explore area 1" in fragment
    assert f'href="/dashboard/requests/{traffic.root}"' in fragment, "the spawning request"
    nested = agents[traffic.calls["nested"]]
    assert f'href="/dashboard/requests/{traffic.first[1]}"' in nested
    assert traffic.calls["first"] in nested, "launched from the first sub-agent"


def nodes(page: str) -> dict[str, tuple[str, str, str]]:
    """Each node's request id: where it leads, its label and its tooltip."""
    found = re.findall(
        r'<a class="graph-link" href="([^"]+)" data-step="([^"]+)"><title>(.*?)</title>.*?'
        r'<text class="node-label"[^>]*>(.*?)</text></a>',
        svg(page),
        re.S,
    )
    return {step: (href, html.unescape(label), html.unescape(title)) for href, step, title, label in found}


def turns(page: str) -> dict[str, str]:
    """Each turn of the transcript (its element id) with the text of its heading."""
    pattern = r'<details class="transcript-turn[^"]*" id="(turn-[^"]+)"[^>]*>\s*<summary>(.*?)</summary>'
    found = re.findall(pattern, page, re.S)
    return {anchor: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", summary)).split()) for anchor, summary in found}


def test_each_node_says_its_own_turn_and_opens_it_in_the_transcript(
    api_proxy: RunningProxy, browser: httpx.Client, database_url: str
) -> None:
    traffic = review(api_proxy)
    wait_until_linked(api_proxy, {traffic.root: traffic.ids}, timeout=2.0)
    page = browser.get(f"/dashboard/conversations/{traffic.root}").text
    drawn, transcript = nodes(page), turns(page)
    assert set(drawn) == set(traffic.ids), "every request labelled"

    review_turn, results, raise_turn = traffic.main[:3]
    assert drawn[review_turn][:2] == (f"#turn-{review_turn}", "Review the service configuration, please.")
    assert drawn[results][0] == f"#turn-{review_turn}", "tool results belong to the turn they answer"
    assert drawn[results][1] == "↳ reply: You said nothing."
    assert drawn[raise_turn][:2] == (f"#turn-{raise_turn}", "Raise the timeouts.")
    assert drawn[traffic.edited][1] == "Lower the timeouts instead.", "an edit's own text, not the first message"
    assert drawn[traffic.compacted[-1]][1] == "Now the retry settings."
    assert drawn[traffic.first[0]][1].startswith("Find every HTTP endpoint"), "a sub-agent's prompt"
    assert drawn[raise_turn][2].startswith("Turn "), "the tooltip names the turn"
    assert "Raise the timeouts." in drawn[raise_turn][2]
    assert "Review the service" not in drawn[raise_turn][2], "not the conversation's title"
    assert "prompt: reply: You said: " in drawn[raise_turn][2]

    assert {href[1:] for href, _, _ in drawn.values()} == set(transcript), "every turn a node opens is there"
    assert transcript[f"turn-{review_turn}"].startswith("1 Review the service configuration, please.")
    assert transcript[f"turn-{review_turn}"].endswith("reply: You said nothing."), "what the turn came to"
    assert transcript[f"turn-{traffic.first[0]}"].startswith("2 subtask_1 Find every HTTP endpoint")
    assert list(transcript).index(f"turn-{raise_turn}") < list(transcript).index(f"turn-{traffic.edited}")
    body = page[page.index(f'id="turn-{review_turn}"') : page.index(f'id="turn-{traffic.first[0]}"')]
    assert body.count('class="transcript-step') == 2, "the prompt's request and the tool results'"
    assert body.count('<details class="block block-tool-use"><summary class="block-title">Tool call: Agent') == 2
    assert "explore both areas with two agents in parallel.</p>" in body, "the answer's text"
    assert f'href="/dashboard/requests/{results}"' in body, "each request opens its page"

    # A request recorded before prompt_text existed says what it is instead.
    query(database_url, "UPDATE exchanges SET prompt_text = NULL WHERE id = $1", uuid.UUID(raise_turn))
    older = browser.get(f"/dashboard/conversations/{traffic.root}").text
    assert nodes(older)[raise_turn][1] == "Turn 7 (prompt, text not recorded)", "the seventh in time order"
    assert turns(older)[f"turn-{raise_turn}"].startswith("7 Turn 7 (prompt, text not recorded)")


def test_text_from_traffic_is_escaped_in_the_list_and_the_graph(api_proxy: RunningProxy, browser: httpx.Client) -> None:
    ids = chat(api_proxy, XSS, "Second turn.")
    wait_until_linked(api_proxy, {ids[0]: ids}, timeout=2.0)

    listing = browser.get("/dashboard/conversations").text
    detail = browser.get(f"/dashboard/conversations/{ids[0]}").text

    title = row(listing, ids[0])
    assert XSS not in listing
    assert ESCAPED in title
    assert XSS not in detail
    tooltips = [html.unescape(text) for text in re.findall(r"<title>(.*?)</title>", svg(detail), re.S)]
    assert ESCAPED in svg(detail)
    assert any(XSS in text for text in tooltips), "the tooltip shows the text, as text"


def test_unknown_and_malformed_ids_within_the_layout(api_proxy: RunningProxy, browser: httpx.Client) -> None:
    unknown = browser.get(f"/dashboard/conversations/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert "No conversation has this id." in unknown.text
    assert 'aria-current="page"' in unknown.text, "within the layout"
    malformed = browser.get("/dashboard/conversations/not-a-uuid")
    assert malformed.status_code == 400
    assert "not a conversation id" in malformed.text

    ids = chat(api_proxy, "Hello there.")
    wait_for(lambda: browser.get(f"/dashboard/conversations/{ids[0]}").status_code == 200)
    for path in ("/dashboard/conversations", f"/dashboard/conversations/{ids[0]}"):
        assert httpx.get(f"{api_proxy.url}{path}").status_code == 303, f"{path} needs the login"


def test_without_a_database_the_pages_say_so(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> None:
    proxy = start_proxy(NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    browser = sign_in(proxy.url, KEY)

    listing = browser.get("/dashboard/conversations")
    detail = browser.get(f"/dashboard/conversations/{uuid.uuid4()}")
    partial = browser.get("/dashboard/conversations", headers={"HX-Request": "true"})

    assert listing.status_code == 200
    assert "Conversations cannot be read" in listing.text
    assert detail.status_code == 503
    assert "This conversation cannot be read" in detail.text
    assert (partial.status_code, "Conversations cannot be read" in partial.text) == (200, True)
