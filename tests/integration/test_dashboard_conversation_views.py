"""The conversation page's timeline and analytics views (``?view=timeline|analytics&branch=``)
over a real proxy and database: traffic sent through the proxy, figures checked against the
management API's tree of the same conversation."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from nexus.entrypoints.dashboard.formatting import duration, number
from tests.integration.conftest import sdk
from tests.integration.test_api_conversations import KEY, Review, chat, review, tree, wait_until_linked
from tests.support.claude_code_session import MAIN_SYSTEM
from tests.support.dashboard import sign_in
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

WORD = "lorem "  # the fake counts a token per four bytes of the request


@pytest.fixture
def api_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


@pytest.fixture
def browser(api_proxy: RunningProxy) -> httpx.Client:
    return sign_in(api_proxy.url, KEY)


@pytest.fixture
def traffic(api_proxy: RunningProxy) -> Review:
    recorded = review(api_proxy)
    wait_until_linked(api_proxy, {recorded.root: recorded.ids}, timeout=2.0)
    return recorded


def timeline_rows(page: str) -> list[tuple[str, str]]:
    """(request id, row html) of the timeline, in page order."""
    return re.findall(r'<tr data-request-id="([^"]+)" data-step="[^"]+"[^>]*>(.*?)</tr>', page, re.S)


def cell(fragment: str, column: str) -> str:
    match = re.search(rf'data-col="{column}">(.*?)</td>', fragment, re.S)
    assert match, f"no {column} cell"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(1))).strip()


def metric(page: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}">(.*?)</div>', page, re.S)
    assert match, f"no {name} metric"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def prompt_size(node: dict[str, Any]) -> int:
    return int(node["input_tokens"] + node["cache_read_input_tokens"] + node["cache_creation_input_tokens"])


def at(node: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(node["timestamp"])


def ended(node: dict[str, Any]) -> datetime:
    return at(node) + timedelta(milliseconds=node["duration_ms"])


def test_the_timeline_lists_the_requests_in_time_order_with_branch_type_model_tokens_and_duration(
    api_proxy: RunningProxy, browser: httpx.Client, traffic: Review
) -> None:
    nodes = tree(api_proxy, traffic.root)["nodes"]

    response = browser.get(f"/dashboard/conversations/{traffic.root}", params={"view": "timeline"})

    assert response.status_code == 200
    page = response.text
    assert 'data-view="timeline" aria-current="true"' in page
    assert "<svg" not in page.split("<main", 1)[1], "the graph belongs to the tree view"
    rows = dict(timeline_rows(page))
    ordered = sorted(nodes, key=lambda n: (n["timestamp"], n["request_id"]))
    assert [request_id for request_id, _ in timeline_rows(page)] == [n["request_id"] for n in ordered]
    for node in nodes:
        fragment = rows[node["request_id"]]
        assert cell(fragment, "branch") == node["branch_id"]
        assert cell(fragment, "model") == "claude-sonnet-5"
        assert cell(fragment, "context") == number(prompt_size(node))
        assert cell(fragment, "output") == number(node["output_tokens"])
        assert cell(fragment, "duration") == duration(node["duration_ms"])
        assert f'href="/dashboard/requests/{node["request_id"]}"' in fragment
    steps = {request_id: cell(fragment, "type") for request_id, fragment in rows.items()}
    assert steps.pop(traffic.main[1]) == "tool results", "the sub-agents' results sent back"
    assert set(steps.values()) == {"prompt"}, "every other request brings a new prompt (a sub-agent's too)"
    assert cell(rows[traffic.main[0]], "answer") == "2 tool calls: Agent (2)"
    assert cell(rows[traffic.main[1]], "answer") == "reply"

    branch = browser.get(f"/dashboard/conversations/{traffic.root}", params={"view": "timeline", "branch": "subtask_1"})
    assert [request_id for request_id, _ in timeline_rows(branch.text)] == traffic.first
    assert '<option value="subtask_1" selected>' in branch.text
    unknown = browser.get(f"/dashboard/conversations/{traffic.root}", params={"view": "timeline", "branch": "nope"})
    assert unknown.status_code == 200
    assert "has no branch &#39;nope&#39;" in unknown.text, "named on the page, and ignored"
    assert len(timeline_rows(unknown.text)) == len(nodes)


def test_the_analytics_of_a_branch_follow_its_requests(
    api_proxy: RunningProxy, browser: httpx.Client, traffic: Review
) -> None:
    nodes = tree(api_proxy, traffic.root)["nodes"]
    main = sorted((n for n in nodes if n["branch_id"] == "main"), key=at)
    by_id = {n["request_id"]: n for n in nodes}
    # Three turns: the review (its Agent calls, then their results answered), the follow-up, /compact.
    summariser = traffic.main[-1]
    turns = [(traffic.main[0], traffic.main[1]), (traffic.main[2], traffic.main[2]), (summariser, summariser)]
    replies = [(ended(by_id[last]) - at(by_id[first])).total_seconds() * 1000 for first, last in turns]

    page = browser.get(f"/dashboard/conversations/{traffic.root}", params={"view": "analytics"}).text

    assert 'data-analytics-branch="main"' in page, "main when no branch is asked for"
    assert metric(page, "requests") == f"Requests {len(main)}"
    assert metric(page, "tool-calls").startswith("Tool executions 2 ")
    assert re.findall(r'<tr data-tool="([^"]+)">.*?data-col="calls">(\d+)<', page, re.S) == [("Agent", "2")]
    assert metric(page, "prompts").startswith("User interactions 3 ")
    assert metric(page, "reply-time") == (
        f"Time to reply (median / max) {duration(statistics.median(replies))} / {duration(max(replies))}"
        " 3 of 3 turns answered"
    )
    inference = [n["duration_ms"] for n in main]
    assert metric(page, "inference") == (
        f"Inference time {duration(sum(inference))} median {duration(statistics.median(inference))} a request"
    )
    latest = main[-1]
    assert f'data-context-percent="{100 * prompt_size(latest) / 1_000_000:.1f}"' in page, "sonnet 5: a 1 M window"
    assert 'data-context-level="ok"' in page
    assert f"{number(prompt_size(latest))} of 1,000,000 tokens" in page

    agent = browser.get(
        f"/dashboard/conversations/{traffic.root}", params={"view": "analytics", "branch": "subtask_1"}
    ).text
    assert 'data-analytics-branch="subtask_1"' in agent
    assert metric(agent, "requests") == f"Requests {len(traffic.first)}"
    assert metric(agent, "prompts").startswith("User interactions 2 "), "its prompt, then the follow-up"
    assert re.findall(r'<tr data-tool="([^"]+)">', agent) == ["Agent"]
    assert f'href="/dashboard/conversations/{traffic.root}?view=analytics&amp;branch=subtask_1" data-view' in agent
    assert f'href="/dashboard/conversations/{traffic.root}?branch=subtask_1" data-view="tree"' in agent, "kept"


class Seeded(NamedTuple):
    model: str
    words: int
    betas: str | None
    window: int
    level: str


@pytest.mark.parametrize(
    "seeded",
    [
        Seeded("claude-haiku-4-5", 100_000, None, 200_000, "warn"),  # about 150 k tokens: 75 %
        Seeded("claude-haiku-4-5", 126_666, None, 200_000, "full"),  # about 190 k tokens: 95 %
        Seeded("claude-sonnet-4-5", 126_666, None, 200_000, "full"),
        Seeded("claude-sonnet-4-5", 126_666, "context-1m-2025-08-07", 1_000_000, "ok"),  # the beta's 1 M window
    ],
    ids=lambda seeded: f"{seeded.model}-{seeded.level}-{seeded.window}",
)
def test_the_context_bar_is_measured_against_the_models_window(
    api_proxy: RunningProxy, browser: httpx.Client, seeded: Seeded
) -> None:
    model, words, betas, window, level = seeded
    headers = {"anthropic-beta": betas} if betas else {}
    sent = sdk(api_proxy.url).messages.with_raw_response.create(
        model=model,
        max_tokens=16,
        system=MAIN_SYSTEM,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": WORD * words}],
        extra_headers=headers,
    )
    request_id = sent.headers["x-request-id"]
    wait_until_linked(api_proxy, {request_id: [request_id]}, timeout=5.0)
    [node] = tree(api_proxy, request_id)["nodes"]

    page = browser.get(f"/dashboard/conversations/{request_id}", params={"view": "analytics"}).text

    percent = 100 * prompt_size(node) / window
    assert f'data-context-level="{level}"' in page
    assert f'class="context-meter context-{level}"' in page
    assert f'data-context-percent="{percent:.1f}"' in page
    assert f"{number(prompt_size(node))} of {number(window)} tokens" in page
    fill = re.search(r'<rect class="context-fill" x="0" y="0" width="([0-9.]+)"', page)
    assert fill, "the bar is drawn"
    assert float(fill.group(1)) == pytest.approx(min(percent, 100), abs=0.01)


def test_the_context_bar_turns_yellow_at_exactly_70_and_red_at_exactly_90_percent(
    fake: FakeAnthropic, api_proxy: RunningProxy, browser: httpx.Client
) -> None:
    """One token either side of each threshold of a 200 k window, prompts sized with the fake's
    own count_tokens (the count its answers report)."""
    counter = sdk(fake.url)

    def prompt(size: int) -> dict[str, Any]:
        return {
            "model": "claude-haiku-4-5",
            "system": MAIN_SYSTEM,
            "messages": [{"role": "user", "content": "x" * size}],
        }

    def count(size: int) -> int:
        return counter.messages.count_tokens(**prompt(size)).input_tokens  # type: ignore[arg-type]

    base = count(1000)
    for tokens, level in ((139_999, "ok"), (140_000, "warn"), (179_999, "warn"), (180_000, "full")):
        size = 1000 + 4 * (tokens - base)  # a token per four bytes: each four more bytes, one more token
        assert count(size) == tokens
        sent = sdk(api_proxy.url).messages.with_raw_response.create(**prompt(size), max_tokens=16)  # type: ignore[arg-type]
        request_id = sent.headers["x-request-id"]
        wait_until_linked(api_proxy, {request_id: [request_id]}, timeout=5.0)
        [node] = tree(api_proxy, request_id)["nodes"]
        assert prompt_size(node) == tokens

        page = browser.get(f"/dashboard/conversations/{request_id}", params={"view": "analytics"}).text

        assert f'class="context-meter context-{level}"' in page, (tokens, level)
        assert f'data-context-level="{level}"' in page, (tokens, level)
        assert f'data-context-percent="{100 * tokens / 200_000:.1f}"' in page
        assert f"{number(tokens)} of 200,000 tokens" in page


def test_bad_views_and_unlinked_conversations(api_proxy: RunningProxy, browser: httpx.Client) -> None:
    ids = chat(api_proxy, "Hello there.", "And again.")
    wait_until_linked(api_proxy, {ids[0]: ids}, timeout=2.0)

    odd = browser.get(f"/dashboard/conversations/{ids[0]}", params={"view": "<b>graph</b>"})
    assert odd.status_code == 200
    assert "There is no view &#39;&lt;b&gt;graph&lt;/b&gt;&#39;" in odd.text
    assert 'data-view="tree" aria-current="true"' in odd.text
    assert "<svg" in odd.text.split("<main", 1)[1], "the tree instead"
    for view in ("timeline", "analytics"):
        malformed = browser.get("/dashboard/conversations/not-a-uuid", params={"view": view})
        assert malformed.status_code == 400
        assert "not a conversation id" in malformed.text
    assert httpx.get(f"{api_proxy.url}/dashboard/conversations/{ids[0]}?view=analytics").status_code == 303
