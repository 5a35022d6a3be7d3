"""The management API reads back what the proxy recorded: lists, details, exact bytes, stats, exports, docs."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.database import query, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dash-key-for-tests"
AUTH = {"x-api-key": KEY}
API_HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
TEAM = "team-a.example.com"
SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]
LIST_FIELDS = {
    "request_id", "timestamp", "domain", "account_id", "model", "request_type", "status", "stream", "state",
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cost_usd",
    "duration_ms", "first_token_ms", "tool_call_count", "conversation_id", "branch_id", "parent_request_id",
    "is_subtask", "parent_task_request_id",
}  # fmt: skip


@dataclass
class Traffic:
    """Five exchanges through one proxy, oldest first, as their clients saw them."""

    ids: list[str]
    stream_bytes: bytes
    json_bytes: bytes
    rows: list[dict[str, Any]]


@pytest.fixture
def api_proxy(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, credentials_dir: Path
) -> RunningProxy:
    (credentials_dir / f"{TEAM}.credentials.json").write_text(
        json.dumps({"type": "api_key", "accountId": "acc_team", "api_key": DEFAULT_API_KEY})
    )
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def make_traffic(proxy: RunningProxy, database_url: str) -> Traffic:
    """An inference turn, a streamed side call, a quota probe and a 429 for another domain, a model list."""
    client = sdk(proxy.url)
    first = client.messages.with_raw_response.create(
        model="claude-sonnet-5",
        max_tokens=64,
        system=SYSTEM,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Bake a pineapple upside down cake"}],
    )
    with client.messages.with_streaming_response.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "Name this conversation, please"}],
        stream=True,
    ) as streamed:
        stream_bytes = streamed.read()
        stream_id = streamed.headers["x-request-id"]
    team = {"host": TEAM, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]}
    quota = httpx.post(f"{proxy.url}/v1/messages", json=body, headers=team)
    limited = httpx.post(f"{proxy.url}/v1/messages", json=body, headers={**team, SCENARIO_HEADER: "error:429"})
    assert (quota.status_code, limited.status_code) == (200, 429)
    models = client.models.with_raw_response.list()
    ids = [
        first.headers["x-request-id"],
        stream_id,
        quota.headers["x-request-id"],
        limited.headers["x-request-id"],
        models.headers["x-request-id"],
    ]
    rows = wait_for_rows(database_url, 5)
    assert [str(row["id"]) for row in rows] == ids
    return Traffic(ids=ids, stream_bytes=stream_bytes, json_bytes=first.http_response.content, rows=rows)


def get(proxy: RunningProxy, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{proxy.url}{path}", params=params, headers=AUTH)


def listed(proxy: RunningProxy, **params: Any) -> list[str]:
    response = get(proxy, "/api/requests", **params)
    assert response.status_code == 200, response.text
    return [item["request_id"] for item in response.json()["requests"]]


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == {400: "invalid_request_error", 401: "authentication_error",
                                     404: "not_found_error"}.get(status, "api_error")  # fmt: skip
    return str(body["error"]["message"])


def test_requests_are_listed_newest_first_filtered_and_paged(api_proxy: RunningProxy, database_url: str) -> None:
    traffic = make_traffic(api_proxy, database_url)
    ids, rows = traffic.ids, traffic.rows
    newest_first = ids[::-1]
    local = f"127.0.0.1:{api_proxy.port}"

    page = get(api_proxy, "/api/requests").json()
    assert page["total"] == 5
    assert [item["request_id"] for item in page["requests"]] == newest_first
    item = page["requests"][-1]
    assert item.keys() >= LIST_FIELDS
    first = rows[0]
    assert (item["domain"], item["account_id"], item["status"], item["state"], item["stream"]) == (
        local, local, 200, "complete", False,
    )  # fmt: skip
    assert (item["model"], item["request_type"], item["is_subtask"]) == (first["model"], "inference", False)
    assert (item["input_tokens"], item["output_tokens"]) == (first["input_tokens"], first["output_tokens"])
    assert isinstance(item["cost_usd"], str)
    assert Decimal(item["cost_usd"]) == first["cost_usd"], "exact, as stored"
    assert datetime.fromisoformat(item["timestamp"]) == first["ts"]
    assert item["timestamp"].endswith("Z"), "UTC"
    assert item["duration_ms"] == pytest.approx(first["duration_ms"])

    # Pagination: every page knows the total.
    pages = [get(api_proxy, "/api/requests", limit=2, offset=offset).json() for offset in (0, 2, 4, 6)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [r["request_id"] for p in pages for r in p["requests"]] == newest_first
    assert pages[-1]["requests"] == []

    # Each filter.
    assert listed(api_proxy, domain=TEAM) == [ids[3], ids[2]]
    assert listed(api_proxy, account_id="acc_team") == [ids[3], ids[2]]
    assert listed(api_proxy, account_id=local) == [ids[4], ids[1], ids[0]]
    assert listed(api_proxy, model="claude-haiku-4-5") == [ids[3], ids[2], ids[1]], "the model requested"
    assert listed(api_proxy, model="claude-haiku-4-5-20251001") == [ids[2], ids[1]], "the model that answered"
    assert listed(api_proxy, request_type="quota") == [ids[3], ids[2]]
    assert listed(api_proxy, request_type="query_evaluation") == [ids[1]]
    assert listed(api_proxy, status=429) == [ids[3]]
    assert listed(api_proxy, state="upstream_error") == [ids[3]]
    assert listed(api_proxy, q="PINEAPPLE") == [ids[0]], "case-insensitive, in the stored response"
    assert listed(api_proxy, q="/v1/models") == [ids[4]], "in the path"
    assert listed(api_proxy, q="100%") == [], "LIKE wildcards are taken literally"
    assert listed(api_proxy, domain=TEAM, status=200) == [ids[2]], "filters combine"
    conversation = uuid.uuid4()
    query(database_url, "UPDATE exchanges SET conversation_id = $1 WHERE id = ANY($2)", conversation,
          [rows[0]["id"], rows[1]["id"]])  # fmt: skip
    assert listed(api_proxy, conversation_id=str(conversation)) == [ids[1], ids[0]]
    middle = rows[2]["ts"]
    assert listed(api_proxy, since=middle.isoformat()) == [ids[4], ids[3], ids[2]], "since is inclusive"
    assert listed(api_proxy, until=middle.isoformat()) == [ids[1], ids[0]], "until is exclusive"
    assert listed(api_proxy, since=middle.replace(tzinfo=None).isoformat()) == [ids[4], ids[3], ids[2]], "UTC"
    assert get(api_proxy, "/api/requests", since=rows[1]["ts"].isoformat(), until=middle.isoformat(),
               limit=1).json() == {"requests": [get(api_proxy, "/api/requests", limit=5).json()["requests"][3]],
                                   "total": 1}  # fmt: skip

    # Exports carry the same rows as the list, with the same filters.
    everything = get(api_proxy, "/api/requests", limit=500).json()["requests"]
    exported = get(api_proxy, "/api/export/requests", format="json")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert 'filename="requests.json"' in exported.headers["content-disposition"]
    assert exported.headers["x-total-count"] == "5"
    assert exported.json() == everything
    team_only = get(api_proxy, "/api/export/requests", format="json", domain=TEAM).json()
    assert team_only == [row for row in everything if row["domain"] == TEAM]
    assert get(api_proxy, "/api/export/requests", format="json", limit=2).json() == everything[:2]
    assert get(api_proxy, "/api/export/requests", format="json", domain="nobody.example").json() == []

    as_csv = get(api_proxy, "/api/export/requests", format="csv", q="pineapple")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["x-total-count"] == "1"
    header, *cells = list(csv.reader(io.StringIO(as_csv.text)))
    assert set(header) >= LIST_FIELDS
    assert len(cells) == 1
    expected = everything[-1]
    assert dict(zip(header, cells[0], strict=True)) == {name: _csv_text(expected[name]) for name in header}
    query(database_url, "UPDATE exchanges SET error = '=HYPERLINK(1)' WHERE id = $1", rows[4]["id"])
    default_format = get(api_proxy, "/api/export/requests")
    assert default_format.headers["content-type"].startswith("text/csv")
    header, *cells = list(csv.reader(io.StringIO(default_format.text)))
    assert len(cells) == 5
    assert cells[0][header.index("error")] == "'=HYPERLINK(1)", "no formula runs in a spreadsheet"
    assert get(api_proxy, f"/api/requests/{ids[4]}").json()["error"] == "=HYPERLINK(1)"


def test_q_finds_the_text_of_a_prompt_that_no_answer_holds(api_proxy: RunningProxy, database_url: str) -> None:
    client = sdk(api_proxy.url)
    history = [
        {"role": "user", "content": "Which towns are on the coast?"},
        {"role": "assistant", "content": "Stone Town, for one."},
        {"role": "user", "content": "Then please summarise the last quarterly sales figures for Zanzibar"},
    ]
    # The fake's answer quotes the prompt's first eight words: the ninth is in the prompt alone.
    raw = client.messages.with_raw_response.create(model="claude-sonnet-5", max_tokens=64, messages=history)  # type: ignore[arg-type]
    request_id = raw.headers["x-request-id"]
    [row] = wait_for_rows(database_url, 1)
    assert "zanzibar" not in json.dumps(row["response_body"]).lower(), "not in the stored answer"
    assert row["prompt_text"] == "Then please summarise the last quarterly sales figures for Zanzibar"

    assert listed(api_proxy, q="ZANZIBAR") == [request_id], "case-insensitive, in the prompt"
    assert listed(api_proxy, q="sales figures for") == [request_id]
    assert listed(api_proxy, q="on the coast") == [], "the last user message only, not the history"
    assert listed(api_proxy, q="Timbuktu") == []


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_one_request_in_full_with_its_exact_bytes(
    fake: FakeAnthropic, api_proxy: RunningProxy, database_url: str
) -> None:
    traffic = make_traffic(api_proxy, database_url)
    ids, rows = traffic.ids, traffic.rows

    detail = get(api_proxy, f"/api/requests/{ids[0]}").json()
    assert detail.keys() >= LIST_FIELDS
    assert detail["request_id"] == ids[0]
    assert (detail["method"], detail["path"], detail["upstream_request_id"]) == (
        "POST", "/v1/messages", rows[0]["upstream_request_id"],
    )  # fmt: skip
    assert detail["request_headers"]["authorization"] == "Bearer ********", "stored masked"
    assert DEFAULT_API_KEY not in json.dumps(detail)
    assert detail["request_body"] == json.loads(fake.requests[0].body)
    assert detail["request_body_size"] == len(fake.requests[0].body)
    assert detail["response_body"] == json.loads(traffic.json_bytes)
    assert detail["response_headers"]["content-type"].startswith("application/json")

    body = get(api_proxy, f"/api/requests/{ids[0]}/request-body")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("application/json")
    assert body.content == fake.requests[0].body, "the exact bytes the client sent"
    streamed_body = get(api_proxy, f"/api/requests/{ids[1]}/request-body")
    assert streamed_body.content == fake.requests[1].body

    stream = get(api_proxy, f"/api/requests/{ids[1]}/stream")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.content == traffic.stream_bytes, "what the client received, byte for byte"
    streamed = get(api_proxy, f"/api/requests/{ids[1]}").json()
    assert (streamed["stream"], streamed["state"]) == (True, "complete")
    assert streamed["first_token_ms"] is not None
    for name in ("duration_ms", "first_token_ms"):
        assert round(streamed[name], 3) == streamed[name], f"{name} to the microsecond: {streamed[name]}"
    assert streamed["response_body"]["type"] == "message", "the message rebuilt from the stream"
    assert streamed["response_body"]["content"][0]["text"].startswith("You said: Name this conversation")
    plain = get(api_proxy, f"/api/requests/{ids[0]}/stream")
    assert plain.content == traffic.json_bytes
    assert plain.headers["content-type"].startswith("application/json")

    limited = get(api_proxy, f"/api/requests/{ids[3]}").json()
    assert (limited["status"], limited["state"]) == (429, "upstream_error")
    assert limited["response_body"]["error"]["type"] == "rate_limit_error"
    assert limited["cost_usd"] is None

    models = get(api_proxy, f"/api/requests/{ids[4]}").json()
    assert (models["method"], models["path"], models["request_body"], models["response_body"]) == (
        "GET", "/v1/models", None, None,
    )  # fmt: skip
    assert "no stored request body" in error_of(get(api_proxy, f"/api/requests/{ids[4]}/request-body"), 404)
    assert "no stored response" in error_of(get(api_proxy, f"/api/requests/{ids[4]}/stream"), 404)

    unknown = uuid.uuid4()
    for path in ("", "/request-body", "/stream"):
        assert str(unknown) in error_of(get(api_proxy, f"/api/requests/{unknown}{path}"), 404)
        assert "expected a UUID" in error_of(get(api_proxy, f"/api/requests/not-a-uuid{path}"), 400)


def test_stats_and_domains_add_up_the_stored_rows(api_proxy: RunningProxy, database_url: str) -> None:
    traffic = make_traffic(api_proxy, database_url)
    rows = traffic.rows

    def totals(subset: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "requests": len(subset),
            "errors": sum(1 for r in subset if r["status"] >= 400 or r["state"] in ("upstream_error", "truncated")),
            **{
                name: sum(r[name] or 0 for r in subset)
                for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            },
            "cost_usd": sum((r["cost_usd"] or Decimal(0) for r in subset), Decimal(0)),
            "avg_duration_ms": pytest.approx(sum(r["duration_ms"] for r in subset) / len(subset), abs=0.0006),
        }

    def shown(group: dict[str, Any]) -> dict[str, Any]:
        return {**{name: group[name] for name in ("requests", "errors", "input_tokens", "output_tokens",
                                                  "cache_creation_input_tokens", "cache_read_input_tokens",
                                                  "avg_duration_ms")},
                "cost_usd": Decimal(group["cost_usd"])}  # fmt: skip

    stats = get(api_proxy, "/api/stats").json()
    assert shown(stats["totals"]) == totals(rows)
    assert stats["totals"]["errors"] == 1
    assert stats["totals"]["input_tokens"] > 0
    assert Decimal(stats["totals"]["cost_usd"]) > 0
    assert datetime.fromisoformat(stats["until"]) - datetime.fromisoformat(stats["since"]) == timedelta(hours=24)
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "by_model": lambda r: r["model"] or r["model_requested"],
        "by_request_type": lambda r: r["request_type"],
        "by_domain": lambda r: r["domain"],
    }
    for breakdown, key in keys.items():
        expected = {name: totals([r for r in rows if key(r) == name]) for name in {key(r) for r in rows}}
        assert {g["name"]: shown(g) for g in stats[breakdown]} == expected, breakdown
        counts = [g["requests"] for g in stats[breakdown]]
        assert counts == sorted(counts, reverse=True), "busiest first"
    assert {g["name"] for g in stats["by_model"]} == {"claude-sonnet-5", "claude-haiku-4-5-20251001",
                                                      "claude-haiku-4-5", None}  # fmt: skip

    window = get(api_proxy, "/api/stats", since=rows[2]["ts"].isoformat(), until=rows[4]["ts"].isoformat()).json()
    assert shown(window["totals"]) == totals(rows[2:4])
    later = rows[-1]["ts"] + timedelta(minutes=1)
    empty = get(api_proxy, "/api/stats", since=later.isoformat(), until=(later + timedelta(hours=1)).isoformat()).json()
    assert empty["totals"] | {"avg_duration_ms": None} == {
        "requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0, "cost_usd": "0.000000000", "avg_duration_ms": None, "avg_first_token_ms": None,
    }  # fmt: skip
    assert empty["by_model"] == []
    assert "must be before" in error_of(get(api_proxy, "/api/stats", since=later.isoformat()), 400)

    domains = get(api_proxy, "/api/domains").json()
    assert domains["total"] == 2
    assert [(d["domain"], d["requests"]) for d in domains["domains"]] == [
        (f"127.0.0.1:{api_proxy.port}", 3), (TEAM, 2),
    ]  # fmt: skip
    assert datetime.fromisoformat(domains["domains"][1]["last_request_at"]) == rows[3]["ts"]
    paged = get(api_proxy, "/api/domains", days=1, limit=1, offset=1).json()
    assert paged == {"domains": [domains["domains"][1]], "total": 2}
    query(database_url, "UPDATE exchanges SET ts = ts - interval '3 days' WHERE domain = $1", TEAM)
    assert [d["domain"] for d in get(api_proxy, "/api/domains", days=2).json()["domains"]] == [
        f"127.0.0.1:{api_proxy.port}"
    ]
    assert get(api_proxy, "/api/domains").json()["total"] == 2, "seven days by default"
    assert "days='0'" in error_of(get(api_proxy, "/api/domains", days=0), 400)


def test_invalid_parameters_get_a_400_naming_them(api_proxy: RunningProxy) -> None:
    cases = {
        "limit='501'": {"limit": 501},
        "limit='abc'": {"limit": "abc"},
        "offset='-1'": {"offset": -1},
        "since='yesterday'": {"since": "yesterday"},
        "conversation_id='nope'": {"conversation_id": "nope"},
        "state='done'": {"state": "done"},
        "status='42'": {"status": 42},
    }
    for needle, params in cases.items():
        assert needle in error_of(get(api_proxy, "/api/requests", **params), 400), needle
    assert "format='xml'" in error_of(get(api_proxy, "/api/export/requests", format="xml"), 400)
    assert "limit='100001'" in error_of(get(api_proxy, "/api/export/requests", limit=100_001), 400)
    assert "ISO 8601" in error_of(get(api_proxy, "/api/stats", until="noon"), 400)
    # Past PostgreSQL's bigint, an offset once failed the query itself (found by the API fuzzing).
    for path in ("/api/requests", "/api/domains", "/api/conversations"):
        assert "offset=" in error_of(get(api_proxy, path, offset=46532200849557504000), 400), path


def test_the_api_needs_the_dashboard_key(start_proxy: Callable[..., RunningProxy]) -> None:
    disabled = start_proxy()
    message = error_of(httpx.get(f"{disabled.url}/api/requests", headers=AUTH), 401)
    assert "set DASHBOARD_API_KEY" in message

    proxy = start_proxy(DASHBOARD_API_KEY=KEY)
    url = f"{proxy.url}/api/requests"
    assert "X-API-Key" in error_of(httpx.get(url), 401)
    assert "X-API-Key" in error_of(httpx.get(url, headers={"x-api-key": "wrong"}), 401)
    assert "X-API-Key" in error_of(httpx.get(url, headers={"authorization": "Bearer wrong"}), 401)
    for path in ("/api/requests", f"/api/requests/{uuid.uuid4()}", "/api/stats", "/api/domains",
                 "/api/export/requests"):  # fmt: skip
        assert httpx.get(f"{proxy.url}{path}").status_code == 401, path
    # The key opens the door; without storage there is nothing behind it.
    for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert "Storage is off" in error_of(httpx.get(url, headers=headers), 503)
    for path in ("/api/stats", "/api/domains", f"/api/requests/{uuid.uuid4()}", "/api/export/requests"):
        assert "Storage is off" in error_of(get(proxy, path), 503), path


def test_docs_are_served_from_the_proxy_itself(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy()
    with httpx.Client(base_url=proxy.url) as client:
        for page in ("/docs", "/docs/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            assert html.headers["content-type"].startswith("text/html")
            assets = re.findall(r"""<(?:script|link)[^>]*(?:src|href)=["']([^"']+)["']""", html.text)
            assert assets, page
            assert "https://" not in " ".join(assets), "no CDN"
            assert "fonts.googleapis" not in html.text
            for asset in assets:
                assert asset.startswith("/docs/assets/")
                loaded = client.get(asset)
                assert loaded.status_code == 200, asset
                assert len(loaded.content) > 100

        schema = client.get("/docs/openapi.json")
        assert schema.status_code == 200
        paths = schema.json()["paths"]
        for path in ("/api/requests", "/api/requests/{request_id}", "/api/requests/{request_id}/request-body",
                     "/api/requests/{request_id}/stream", "/api/stats", "/api/domains", "/api/export/requests",
                     "/health", "/health/live", "/health/ready"):  # fmt: skip
            assert path in paths, path
        assert all(path.startswith(("/api/", "/health", "/token-stats", "/oauth-metrics")) for path in paths), sorted(
            paths
        )
        assert not any("hello" in path or "event_logging" in path for path in paths)
        parameters = {p["name"] for p in paths["/api/requests"]["get"]["parameters"]}
        assert parameters >= {"domain", "account_id", "model", "request_type", "status", "state",
                              "conversation_id", "since", "until", "q", "limit", "offset"}  # fmt: skip
        assert schema.json()["components"]["securitySchemes"].keys() == {"apiKey", "dashboardKey", "bearer"}
        assert Counter(p["name"] for p in paths["/api/export/requests"]["get"]["parameters"])["format"] == 1
