"""The dashboard's request pages over a real proxy and database, signed in as a browser: the list
(columns, filters, search, paging, htmx partial) and one request in full (facts, rendered
conversation, masked headers, raw JSON, stream timeline); nothing a client sent runs as HTML."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from markupsafe import escape

from nexus.entrypoints.dashboard.formatting import duration, money
from nexus.entrypoints.dashboard.render.stream_timeline import TIMELINE_HEAD, TIMELINE_TAIL, parse_timeline
from tests.integration.conftest import sdk
from tests.support.claude_code_session import Agent
from tests.support.dashboard import sign_in
from tests.support.database import linker_held, query, response_raw, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-tests"
OTHER = "team-b.example.com"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
ESCAPED = str(escape(XSS))
TOOL_OUTPUT = "port = 8080"


@dataclass
class Traffic:
    """Six exchanges, oldest first: a streamed tool call, its result, streamed thinking, an XSS
    prompt and model name (a 404), an overloaded 529, and a call for another domain."""

    tool: str
    result: str
    thinking: str
    xss: str
    failed: str
    other: str
    rows: dict[str, dict[str, Any]]
    conversation_id: str

    @property
    def ids(self) -> list[str]:
        return [self.tool, self.result, self.thinking, self.xss, self.failed, self.other]

    @property
    def newest_first(self) -> list[str]:
        return self.ids[::-1]

    def where(self, check: Callable[[dict[str, Any]], bool]) -> list[str]:
        return [request_id for request_id in self.newest_first if check(self.rows[request_id])]


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


@pytest.fixture
def browser(proxy: RunningProxy) -> httpx.Client:
    return sign_in(proxy.url, KEY)


@pytest.fixture
def traffic(proxy: RunningProxy, database_url: str) -> Traffic:
    client = sdk(proxy.url)
    agent = Agent(client, session_id=str(uuid.uuid4()))
    agent.say("Read the config file, please", scenario="tool_use")
    [call] = agent.tool_calls()
    agent.answer_tools({call.id: TOOL_OUTPUT})
    agent.say("Think it over", scenario="thinking")
    tool, result, thinking = agent.request_ids

    with pytest.raises(anthropic.NotFoundError) as unknown_model:  # the error message quotes the model
        client.messages.create(model=XSS, max_tokens=32, messages=[{"role": "user", "content": XSS}])
    xss = unknown_model.value.response.headers["x-request-id"]
    with pytest.raises(anthropic.APIStatusError) as failure:
        Agent(client, session_id=str(uuid.uuid4())).say("Anyone there?", scenario="error:529")
    assert failure.value.status_code == 529
    failed = failure.value.response.headers["x-request-id"]
    other = (
        sdk(proxy.url, default_headers={"host": OTHER})
        .messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hello"}]
        )
        .headers["x-request-id"]
    )

    ids = [tool, result, thinking, xss, failed, other]
    stored = wait_for_rows(database_url, len(ids))
    assert [str(row["id"]) for row in stored] == ids
    deadline = time.monotonic() + 10
    while True:  # the linker threads the conversation in the background
        linked = query(database_url, "SELECT id, conversation_id FROM exchanges WHERE id = ANY($1)",
                       [uuid.UUID(i) for i in (tool, result, thinking)])  # fmt: skip
        if all(row["conversation_id"] for row in linked):
            break
        assert time.monotonic() < deadline, "the conversation was not linked"
        time.sleep(0.05)
    rows = {str(row["id"]): row for row in wait_for_rows(database_url, len(ids))}
    conversation = str(rows[tool]["conversation_id"])
    return Traffic(tool, result, thinking, xss, failed, other, rows, conversation)


# --- reading the pages --------------------------------------------------------------------------


def listed(page: str) -> list[str]:
    return re.findall(r'<tr data-request-id="([^"]+)"', page)


def row(page: str, request_id: str) -> str:
    match = re.search(rf'<tr data-request-id="{request_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {request_id}"
    return match.group(1)


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def cell(fragment: str, column: str) -> str:
    match = re.search(rf'data-col="{column}"[^>]*>(.*?)</td>', fragment, re.S)
    assert match, f"no {column} cell"
    return text(match.group(1))


def fact(page: str, name: str) -> str:
    match = re.search(rf'<dd data-fact="{name}"[^>]*>(.*?)</dd>', page, re.S)
    assert match, f"no {name} fact"
    return text(match.group(1))


def total(page: str) -> int:
    match = re.search(r'data-total="(\d+)"', page)
    assert match, "the total is shown"
    return int(match.group(1))


def link(page: str, rel: str) -> str | None:
    match = re.search(
        rf'<a href="([^"]+)" hx-get="[^"]+" hx-target="#requests-results" hx-push-url="true" rel="{rel}"', page
    )
    return html.unescape(match.group(1)) if match else None


def timeline(page: str) -> list[str]:
    section = re.search(r'<table class="stream-timeline">.*?</table>', page, re.S)
    assert section, "the page shows the stream timeline"
    return re.findall(r'<tr data-event="([^"]+)">', section.group(0))


def stream_event_names(raw: bytes) -> list[str]:
    return [line[6:].strip().decode() for line in raw.split(b"\n") if line.startswith(b"event:")]


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def ok_page(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert " style=" not in response.text, "no inline style (CSP)"
    assert "hx-on" not in response.text
    assert "js:" not in response.text
    return response.text


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_every_request_newest_first_with_its_columns(
    proxy: RunningProxy, browser: httpx.Client, traffic: Traffic
) -> None:
    page = ok_page(browser.get("/dashboard/requests"))

    assert listed(page) == traffic.newest_first
    assert total(page) == 6
    assert "6 requests, 1\u20136 shown" in text(page)
    local = f"127.0.0.1:{proxy.port}"
    for request_id in traffic.ids:
        stored, shown = traffic.rows[request_id], row(page, request_id)
        assert cell(shown, "domain") == stored["domain"]
        assert cell(shown, "state") == f"{stored['state']} {stored['status']}", "the state, then the status"
        assert f'class="badge state-{stored["state"]}"' in shown
        path = f"{stored['method']} {stored['path']}"
        assert cell(shown, "path") == (f"{path} {stored['request_type']}" if stored["request_type"] else path)
        assert cell(shown, "tokens") == f"{count(stored['input_tokens'])} / {count(stored['output_tokens'])}"
        assert cell(shown, "cost") == money(None if stored["cost_usd"] is None else str(stored["cost_usd"]))
        assert cell(shown, "duration") == duration(stored["duration_ms"])
        assert f'href="/dashboard/requests/{request_id}"' in shown, "the time opens the request"
    tool = row(page, traffic.tool)
    assert cell(tool, "model").startswith("claude-sonnet-5")
    assert (cell(tool, "domain"), cell(tool, "state"), cell(tool, "path")) == (
        local, "complete 200", "POST /v1/messages inference",
    )  # fmt: skip
    branch = traffic.rows[traffic.tool]["branch_id"]
    assert cell(tool, "conversation") == f"{traffic.conversation_id[:8]} {branch}", "the conversation and the branch"
    assert f'<span class="badge kind-main" data-branch="{branch}">' in tool
    assert f'href="/dashboard/conversations/{traffic.conversation_id}"' in tool
    assert cell(row(page, traffic.failed), "state") == "upstream_error 529"
    assert '<span class="error" data-status="529">' in row(page, traffic.failed)
    assert cell(row(page, traffic.other), "domain") == OTHER
    # A plain SDK call is a conversation of its own (THREAD_RULE=any_client), named by its id.
    assert cell(row(page, traffic.other), "conversation") == f"{traffic.other[:8]} main"
    assert money("0.001234500") == "$0.001235", "four significant digits, as everywhere in the dashboard"
    assert money("2") == "$2.00"
    assert duration(850.4) == "850 ms"
    assert duration(1234.0) == "1.23 s"


def test_each_row_previews_its_own_prompt_and_answer(browser: httpx.Client, traffic: Traffic) -> None:
    rows = traffic.rows
    # Written at record time: the last user message's text, Claude Code's reminder block left out.
    assert rows[traffic.tool]["prompt_text"] == "Read the config file, please"
    assert rows[traffic.result]["prompt_text"] is None, "a message of tool results only has no text"
    assert rows[traffic.thinking]["prompt_text"] == "Think it over"
    assert (rows[traffic.xss]["prompt_text"], rows[traffic.other]["prompt_text"]) == (XSS, "hello")

    page = ok_page(browser.get("/dashboard/requests"))
    tool = cell(row(page, traffic.tool), "preview")
    assert tool == "Read the config file, please → I'll read the config file first. · 1 tool call: Read"
    assert cell(row(page, traffic.result), "preview") == "→ You said nothing.", "tool results: the answer alone"
    thinking = cell(row(page, traffic.thinking), "preview")
    assert thinking.startswith("Think it over → You said: "), "the text block, not the thinking"
    failed = cell(row(page, traffic.failed), "preview")
    assert failed.startswith("Anyone there? → "), "an error answer previews its message"
    assert failed != "Anyone there? → ", failed
    xss = row(page, traffic.xss)
    assert ESCAPED in xss, "previews are escaped"
    assert XSS not in xss


def test_the_search_finds_prompt_text_too(proxy: RunningProxy, browser: httpx.Client, traffic: Traffic) -> None:
    def shown(q: str) -> list[str]:
        return listed(ok_page(browser.get("/dashboard/requests", params={"q": q})))

    assert "please" not in str(traffic.rows[traffic.tool]["response_body"]), "only the prompt has it"
    assert shown("PLEASE") == [traffic.tool], "case-insensitive, in the prompt"
    assert shown("config file first") == [traffic.tool], "in the response, as before"
    api = httpx.get(f"{proxy.url}/api/requests", params={"q": "please"}, headers={"x-api-key": KEY})
    assert [item["request_id"] for item in api.json()["requests"]] == [traffic.tool], "the API's q too"


def test_each_filter_and_the_search_narrow_the_list(browser: httpx.Client, traffic: Traffic) -> None:
    def shown(**params: str) -> list[str]:
        page = ok_page(browser.get("/dashboard/requests", params=params))
        assert total(page) == len(listed(page))
        return listed(page)

    rows = traffic.rows
    failed = rows[traffic.failed]
    local = rows[traffic.tool]["domain"]
    assert shown(domain=OTHER) == [traffic.other]
    assert shown(domain=local) == traffic.where(lambda r: r["domain"] == local)
    assert shown(model="claude-haiku-4-5") == [traffic.other], "the model requested"
    assert shown(model=str(rows[traffic.other]["model"])) == [traffic.other], "the model that answered"
    assert shown(request_type="inference") == traffic.where(lambda r: r["request_type"] == "inference")
    assert traffic.tool in shown(request_type="inference")
    assert shown(request_type="query_evaluation") == traffic.where(lambda r: r["request_type"] == "query_evaluation")
    assert failed["state"] == "upstream_error"
    assert shown(state="upstream_error") == traffic.where(lambda r: r["state"] == "upstream_error")
    assert traffic.failed in shown(state="upstream_error")
    assert shown(state="complete") == traffic.where(lambda r: r["state"] == "complete")
    assert shown(status="529") == [traffic.failed]
    assert shown(status="200", domain=local) == traffic.where(lambda r: r["status"] == 200 and r["domain"] == local)
    assert shown(q="CONFIG.TOML") == [traffic.tool], "case-insensitive, in the stored response"
    assert shown(q="no-such-text") == []
    assert shown(conversation_id=traffic.conversation_id) == traffic.where(
        lambda r: str(r["conversation_id"]) == traffic.conversation_id
    )
    middle = rows[traffic.thinking]["ts"]
    assert shown(since=middle.isoformat()) == traffic.newest_first[:4], "since is inclusive"
    assert shown(until=middle.isoformat()) == traffic.newest_first[4:], "until is exclusive"
    naive = middle.replace(tzinfo=None).isoformat()
    assert shown(since=naive) == traffic.newest_first[:4], "a time without offset is UTC (as the form sends it)"

    # The form shows what is applied, and the layout's domain form keeps it when the domain changes.
    page = ok_page(browser.get("/dashboard/requests", params={"model": "claude-haiku-4-5", "state": "complete"}))
    assert '<input type="text" name="model" value="claude-haiku-4-5"' in page
    assert '<option value="complete" selected>' in page
    domain_form = re.search(r'<form class="domain-filter".*?</form>', page, re.S)
    assert domain_form
    assert '<input type="hidden" name="model" value="claude-haiku-4-5">' in domain_form.group(0)
    assert '<input type="hidden" name="state" value="complete">' in domain_form.group(0)
    empty = ok_page(browser.get("/dashboard/requests", params={"domain": "nobody.example"}))
    assert "No requests match these filters." in empty

    # What cannot be a filter is said, not guessed at.
    for params, message in (
        ({"state": "bogus"}, "Unknown state"),
        ({"status": "abc"}, "Invalid status"),
        ({"since": "yesterday"}, "Invalid since"),
        ({"conversation_id": "nope"}, "Invalid conversation id"),
        ({"offset": "-1"}, "Invalid offset"),
        ({"limit": "100000"}, "Invalid page size"),
    ):
        refused = browser.get("/dashboard/requests", params=params)
        assert refused.status_code == 400, params
        assert message in refused.text
        assert listed(refused.text) == []
        assert 'class="topbar"' in refused.text, "within the layout"


def test_pages_are_bounded_and_linked_by_offset(browser: httpx.Client, traffic: Traffic) -> None:
    pages: list[str] = []
    urls = ["/dashboard/requests?limit=2"]
    while len(pages) < 5:
        pages.append(ok_page(browser.get(urls[-1])))
        following = link(pages[-1], "next")
        if following is None:
            break
        urls.append(following)
    assert urls == [
        "/dashboard/requests?limit=2",
        "/dashboard/requests?limit=2&offset=2",
        "/dashboard/requests?limit=2&offset=4",
    ]
    assert [total(page) for page in pages] == [6, 6, 6], "every page knows the total"
    assert [listed(page) for page in pages] == [traffic.newest_first[n : n + 2] for n in (0, 2, 4)], "one page each"
    assert "5\u20136 of 6" in text(pages[-1])
    assert link(pages[-1], "prev") == "/dashboard/requests?limit=2&offset=2"
    assert link(pages[1], "prev") == "/dashboard/requests?limit=2", "the first page has no offset"

    filtered = ok_page(browser.get("/dashboard/requests", params={"limit": "1", "domain": OTHER}))
    assert listed(filtered) == [traffic.other]
    assert link(filtered, "next") is None, "one match, one page"
    past = ok_page(browser.get("/dashboard/requests", params={"limit": "2", "offset": "50"}))
    assert listed(past) == []
    assert link(past, "prev") == "/dashboard/requests?limit=2&offset=4", "back to the last page"


def test_an_htmx_request_gets_only_the_results(browser: httpx.Client, traffic: Traffic) -> None:
    full = ok_page(browser.get("/dashboard/requests"))
    form = re.search(r'<form class="filters requests-filters".*?>', full, re.S)
    assert form, "the filter form"
    assert 'method="get" action="/dashboard/requests"' in form.group(0), "works without JavaScript"
    assert 'hx-get="/dashboard/requests"' in form.group(0)
    assert 'hx-target="#requests-results"' in form.group(0)
    assert 'hx-push-url="true"' in form.group(0)
    assert '<div id="requests-results">' in full

    params = {"q": "config.toml", "limit": "25"}
    partial = browser.get("/dashboard/requests", params=params, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "HX-Request" in partial.headers["vary"]
    assert "<html" not in partial.text
    assert 'class="topbar"' not in partial.text
    assert "requests-filters" not in partial.text, "not the form: the results only"
    assert listed(partial.text) == [traffic.tool]
    assert 'class="requests-table card-rows"' in partial.text
    # The layout's domain form is replaced out of band, so it carries the filters just applied.
    domain_form = re.search(r'<form class="domain-filter"[^>]*hx-swap-oob="outerHTML:.domain-filter">.*?</form>',
                            partial.text, re.S)  # fmt: skip
    assert domain_form
    assert '<input type="hidden" name="q" value="config.toml">' in domain_form.group(0)
    assert '<input type="hidden" name="limit" value="25">' in domain_form.group(0)

    restored = browser.get(
        "/dashboard/requests", params=params, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert 'class="topbar"' in restored.text, "history restores need the whole page"
    refused = browser.get("/dashboard/requests", params={"status": "x"}, headers={"HX-Request": "true"})
    assert refused.status_code == 200, "htmx swaps only successes: the message comes with 200"
    assert "Invalid status" in refused.text


# --- one request --------------------------------------------------------------------------------


def test_a_streamed_tool_call_in_full(browser: httpx.Client, traffic: Traffic, database_url: str) -> None:
    stored = traffic.rows[traffic.tool]
    page = ok_page(browser.get(f"/dashboard/requests/{traffic.tool}"))

    assert 'class="topbar"' in page
    assert fact(page, "model-requested") == "claude-sonnet-5"
    assert fact(page, "model") == stored["model"]
    assert fact(page, "state") == "complete"
    assert fact(page, "status") == "200"
    assert fact(page, "stream") == "yes"
    assert fact(page, "input-tokens") == count(stored["input_tokens"])
    assert fact(page, "output-tokens") == count(stored["output_tokens"])
    assert fact(page, "cache-read") == count(stored["cache_read_input_tokens"])
    assert fact(page, "cache-write").startswith(count(stored["cache_creation_input_tokens"]))
    five_minutes, one_hour = stored["cache_creation_5m_input_tokens"], stored["cache_creation_1h_input_tokens"]
    assert f"5 m: {count(five_minutes)}, 1 h: {count(one_hour)}" in fact(page, "cache-write")
    assert stored["cost_usd"] is not None
    assert fact(page, "cost").startswith(money(str(stored["cost_usd"])))
    assert f"exactly {stored['cost_usd']} USD, prices {stored['price_version']}" in fact(page, "cost")
    assert fact(page, "first-token") == duration(stored["first_token_ms"])
    assert fact(page, "duration") == duration(stored["duration_ms"])
    assert f'href="/dashboard/conversations/{traffic.conversation_id}"' in page
    assert stored["session_id"] in page

    # The conversation: the user's prompt, then the streamed answer with its tool call.
    assert 'class="turn turn-user"' in page
    assert "Read the config file, please" in page
    assert "Tool call: Read" in page
    assert "/srv/app/config.toml" in page

    # Headers: a table each, credentials masked.
    assert DEFAULT_API_KEY not in page
    credentials = re.findall(r"<td><code>(authorization|x-api-key)</code></td><td[^>]*><code>([^<]*)</code></td>", page)
    assert credentials, "the client's credential header is listed"
    assert all(re.fullmatch(r"(Bearer )?\*{8}", value) for _, value in credentials), credentials
    assert re.search(r"<td><code>anthropic-version</code></td>", page)
    assert re.search(r"<td><code>content-type</code></td><td[^>]*><code>text/event-stream", page)

    # Raw JSON, collapsed.
    assert re.search(r'<details class="raw-json">\s*<summary>Request body', page)
    assert "&#34;max_tokens&#34;: 1024" in page, "pretty-printed and escaped"

    # The stream: every event the client received, in order, with its bytes.
    events = timeline(page)
    raw = response_raw(stored)
    assert events == stream_event_names(raw)
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "content_block_delta" in events
    assert "message_delta" in events
    assert "input_json_delta" in page
    assert "stop_reason: tool_use" in page
    assert f"{len(raw):,} bytes" in page
    assert f'<td class="num">{len(raw):,}</td>\n</tr>' in page, "the last event ends the stream"
    assert "keeps no time per event" in page
    assert f"First token after {duration(stored['first_token_ms'])}" in page


def test_tool_results_and_thinking_are_rendered(browser: httpx.Client, traffic: Traffic) -> None:
    result = ok_page(browser.get(f"/dashboard/requests/{traffic.result}"))
    assert "Tool call: Read" in result, "the history's tool call"
    assert "Tool result: Read" in result
    assert TOOL_OUTPUT in result
    assert fact(result, "parent") == traffic.tool
    assert f'href="/dashboard/requests/{traffic.tool}"' in result

    thinking = ok_page(browser.get(f"/dashboard/requests/{traffic.thinking}"))
    block = re.search(r'<details class="block block-thinking">(.*?)</details>', thinking, re.S)
    assert block, "the thinking is collapsed"
    assert "The user wants a short answer" in block.group(1)
    assert "thinking_delta" in thinking
    assert "signature_delta (" in thinking
    assert timeline(thinking)[-1] == "message_stop"


def test_an_error_and_a_plain_response(browser: httpx.Client, traffic: Traffic) -> None:
    failed = ok_page_status(browser.get(f"/dashboard/requests/{traffic.failed}"), 200)
    assert fact(failed, "status") == "529"
    assert "overloaded_error" in failed
    assert 'class="turn turn-assistant turn-response"' in failed

    other = ok_page(browser.get(f"/dashboard/requests/{traffic.other}", params={"domain": OTHER}))
    assert fact(other, "stream") == "no"
    assert "Not a streamed request" in other
    assert '<a href="/dashboard/requests?domain=team-b.example.com">' in other, "back to the list, same domain"


def test_the_request_page_says_waiting_for_the_linker_only_while_it_is_queued(
    proxy: RunningProxy, browser: httpx.Client, database_url: str
) -> None:
    client = sdk(proxy.url)
    with linker_held(database_url):
        queued = client.messages.with_raw_response.create(
            model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": "Thread me later."}]
        ).headers["x-request-id"]
        empty = httpx.post(
            f"{proxy.url}/v1/messages",
            content=b"",
            headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
        ).headers["x-request-id"]
        rows = {str(row["id"]): row for row in wait_for_rows(database_url, 2)}
        assert rows[queued]["link_pending"], "queued while the linker cannot run"
        assert rows[queued]["conversation_id"] is None
        assert not rows[empty]["link_pending"], "never queued"

        waiting = ok_page(browser.get(f"/dashboard/requests/{queued}"))
        assert "not linked yet: waiting for the linker" in fact(waiting, "conversation")
        never = fact(ok_page_status(browser.get(f"/dashboard/requests/{empty}"), 200), "conversation")
        assert "not threaded: there was no Messages request body to read" in never
        assert "waiting" not in never
        assert "not linked yet" not in never

    linked = wait_for_rows(database_url, 1, where=f"id = '{queued}' AND conversation_id IS NOT NULL", timeout=30)
    assert linked, "the linker threads it once it can run"
    threaded = ok_page(browser.get(f"/dashboard/requests/{queued}"))
    assert f"/dashboard/conversations/{linked[0]['conversation_id']}" in threaded
    assert 'data-fact="unthreaded"' not in threaded


def test_what_a_client_sent_never_runs_as_html(browser: httpx.Client, traffic: Traffic) -> None:
    listing = ok_page(browser.get("/dashboard/requests"))
    assert XSS not in listing
    assert ESCAPED in cell_html(listing, traffic.xss, "model")

    searched = ok_page(browser.get("/dashboard/requests", params={"q": XSS}))
    assert listed(searched) == [traffic.xss]
    assert XSS not in searched
    assert f'name="q" value="{ESCAPED}"' in searched
    partial = browser.get("/dashboard/requests", params={"q": XSS}, headers={"HX-Request": "true"}).text
    assert XSS not in partial
    assert ESCAPED in partial

    detail = ok_page(browser.get(f"/dashboard/requests/{traffic.xss}"))
    assert XSS not in detail
    assert "<script>" not in detail
    assert "<img" not in detail
    assert detail.count(ESCAPED) >= 3, "prompt, model and raw JSON"


def test_unknown_and_malformed_ids(browser: httpx.Client, traffic: Traffic) -> None:
    unknown = browser.get(f"/dashboard/requests/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert 'class="topbar"' in unknown.text, "within the layout"
    assert "No recorded request has this id." in unknown.text

    for bad in ("nope", XSS.replace("/", "")):
        malformed = browser.get(f"/dashboard/requests/{bad}")
        assert malformed.status_code == 400
        assert 'class="topbar"' in malformed.text
        assert "not a request id" in malformed.text
        assert "<script>" not in malformed.text


def test_the_pages_say_when_nothing_can_be_read(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> None:
    down = start_proxy(
        DASHBOARD_API_KEY=KEY,
        NEXUS_DATA_DIR=str(tmp_path / "down"),
        DATABASE_URL="postgresql://nexus@127.0.0.1:9/nexus",
    )
    browser = sign_in(down.url, KEY)
    listing = browser.get("/dashboard/requests")
    assert listing.status_code == 200
    assert "requests cannot be read: the database cannot be reached" in listing.text.lower()
    partial = browser.get("/dashboard/requests", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "Requests cannot be read" in partial.text
    detail = browser.get(f"/dashboard/requests/{uuid.uuid4()}")
    assert detail.status_code == 503
    assert "this request cannot be read: the database cannot be reached" in detail.text.lower()
    assert 'class="topbar"' in detail.text

    without_storage = start_proxy(DASHBOARD_API_KEY=KEY, NEXUS_DATA_DIR=str(tmp_path / "off"))
    page = sign_in(without_storage.url, KEY).get("/dashboard/requests")
    assert page.status_code == 200
    assert "requests cannot be read: storage is off" in page.text.lower()


def test_the_pages_need_a_session(proxy: RunningProxy) -> None:
    for path in ("/dashboard/requests", f"/dashboard/requests/{uuid.uuid4()}"):
        response = httpx.get(f"{proxy.url}{path}")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login")
    fragment = httpx.get(f"{proxy.url}/dashboard/requests", headers={"HX-Request": "true"})
    assert fragment.headers["hx-redirect"].startswith("/dashboard/login")


def ok_page_status(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.text


def cell_html(page: str, request_id: str, column: str) -> str:
    match = re.search(rf'data-col="{column}">(.*?)</td>', row(page, request_id), re.S)
    assert match
    return match.group(1)


def test_big_bodies_are_cut_with_a_note(proxy: RunningProxy, browser: httpx.Client, database_url: str) -> None:
    prompt = "lorem ipsum " * 25_000  # 300,000 characters
    request_id = (
        sdk(proxy.url)
        .messages.with_raw_response.create(
            model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": prompt}]
        )
        .headers["x-request-id"]
    )
    wait_for_rows(database_url, 1)

    page = ok_page(browser.get(f"/dashboard/requests/{request_id}"))
    assert re.search(r"Truncated: the first 200,000 of 300,\d{3} characters are shown", page), "the raw JSON"
    assert "Truncated: the first 200,000 of 300,000 characters are shown" in page, "the rendered prompt"
    assert len(page) < 1_000_000, "bounded however big the body"


def test_the_timeline_of_a_long_stream_is_bounded() -> None:
    events = [
        b'event: message_start\r\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3}}}'
    ]
    delta = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"%d"}}'
    events += [b"event: content_block_delta\r\ndata: " + delta % number for number in range(298)]
    events.append(b'event: message_stop\r\ndata: {"type":"message_stop"}')
    stream = b"\r\n\r\n".join(events) + b'\r\n\r\nevent: content_block_delta\r\ndata: {"type":'  # torn at the end

    found = parse_timeline(stream)

    assert found.total_events == 301
    assert [e.number for e in found.head] == list(range(1, TIMELINE_HEAD + 1))
    assert [e.number for e in found.tail] == list(range(301 - TIMELINE_TAIL + 1, 302))
    assert found.omitted == 301 - TIMELINE_HEAD - TIMELINE_TAIL
    assert found.head[0].summary == "msg_1 · in 3"
    assert (found.head[1].name, found.head[1].index, found.head[1].summary) == (
        "content_block_delta", 0, 'text_delta "0"',
    )  # fmt: skip
    assert found.tail[-2].name == "message_stop"
    assert found.tail[-1].summary.startswith("(not JSON)")
    assert found.tail[-1].offset == found.total_bytes == len(stream)
    offsets = [e.offset for e in (*found.head, *found.tail)]
    assert offsets == sorted(offsets)
    assert found.head[0].offset == found.head[0].size == len(events[0]) + 4


def test_a_search_counts_its_first_matches_only_and_still_pages_on(
    browser: httpx.Client, traffic: Traffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nexus.entrypoints.dashboard.pages.requests.SEARCH_COUNT_LIMIT", 2)

    page = ok_page(browser.get("/dashboard/requests", params={"q": "claude", "limit": 2}))

    assert total(page) == 2
    assert re.search(r"2\+ requests", text(page)), "said to be a lower bound"
    assert link(page, "next") is not None, "more matches may follow"
    exact = ok_page(browser.get("/dashboard/requests", params={"model": "claude-haiku-4-5", "limit": 2}))
    assert "+ request" not in text(exact), "without a search the total is exact"
