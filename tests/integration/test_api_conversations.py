"""The conversations API reads back linked traffic: the list of conversations and the tree of one."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.integration.test_conversation_linking import COMPACT_INSTRUCTION, SUMMARISER, continuation
from tests.support.claude_code_session import MAIN_SYSTEM, Agent, start_subagent
from tests.support.fake_anthropic import DEFAULT_API_KEY, SUMMARY_TEXT
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dash-key-for-tests"
AUTH = {"x-api-key": KEY}
TEAM = "team-a.example.com"


@dataclass
class Review:
    """One conversation with every kind of branch, its requests by role, oldest first."""

    main: list[str]  # review (launches two sub-agents), tool results, follow-up, the /compact summariser
    first: list[str]  # sub-agent 1: its start, then a turn launching a nested sub-agent
    second: list[str]  # sub-agent 2: its start
    nested: list[str]  # launched by sub-agent 1's second turn: start and follow-up
    edited: str  # the follow-up question sent again, reworded
    compacted: list[str]  # after the compaction
    calls: dict[str, str]  # tool_use id by sub-agent ("first", "second", "nested")

    @property
    def ids(self) -> list[str]:
        return [*self.main, *self.first, *self.second, *self.nested, self.edited, *self.compacted]

    @property
    def root(self) -> str:
        return self.main[0]


@pytest.fixture
def api_proxy(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, credentials_dir: Path
) -> RunningProxy:
    (credentials_dir / f"{TEAM}.credentials.json").write_text(
        json.dumps({"type": "api_key", "accountId": "acc_team", "api_key": DEFAULT_API_KEY})
    )
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def review(proxy: RunningProxy) -> Review:
    client = sdk(proxy.url)
    session = str(uuid.uuid4())
    main = Agent(client, session_id=session)
    main.say("Review the service configuration, please.", scenario="agents")
    first_call, second_call = main.tool_calls()
    first = start_subagent(main, first_call)
    second = start_subagent(main, second_call)
    first.say("Look closer at the handlers.", scenario="agents")
    nested_call, _ = first.tool_calls()
    nested = start_subagent(first, nested_call)
    nested.say("Include the middleware.")
    main.answer_tools({first_call.id: "12 endpoints", second_call.id: "pytest, 3 folders"})
    before_follow_up = list(main.messages)
    main.say("Raise the timeouts.")
    edit = Agent(client, session_id=session)
    edit.messages = before_follow_up
    edit.say("Lower the timeouts instead.")
    summariser = Agent(client, session_id=session, system=[*MAIN_SYSTEM[:2], SUMMARISER])
    summariser.messages = list(main.messages)
    summariser.say(COMPACT_INSTRUCTION, scenario="summary")
    compacted = Agent(client, session_id=session)
    compacted.say(continuation(SUMMARY_TEXT))
    compacted.say("Now the retry settings.")
    return Review(
        main=main.request_ids + summariser.request_ids,
        first=first.request_ids,
        second=second.request_ids,
        nested=nested.request_ids,
        edited=edit.request_ids[0],
        compacted=compacted.request_ids,
        calls={"first": first_call.id, "second": second_call.id, "nested": nested_call.id},
    )


def chat(proxy: RunningProxy, *turns: str, host: str | None = None) -> list[str]:
    headers = {"host": host} if host else {}
    agent = Agent(sdk(proxy.url, default_headers=headers), session_id=str(uuid.uuid4()))
    for text in turns:
        agent.say(text)
    return agent.request_ids


def get(proxy: RunningProxy, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{proxy.url}{path}", params=params, headers=AUTH)


def tree(proxy: RunningProxy, conversation_id: str, **params: Any) -> dict[str, Any]:
    response = get(proxy, f"/api/conversations/{conversation_id}", **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def listed(proxy: RunningProxy, **params: Any) -> list[str]:
    response = get(proxy, "/api/conversations", **params)
    assert response.status_code == 200, response.text
    return [item["conversation_id"] for item in response.json()["conversations"]]


def wait_until_linked(proxy: RunningProxy, conversations: dict[str, list[str]], *, timeout: float = 1.0) -> None:
    """Poll the API until each conversation's tree holds exactly these requests."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {cid: _node_ids(proxy, cid) for cid in conversations}
        if all(seen[cid] == set(ids) for cid, ids in conversations.items()):
            return
        assert time.monotonic() < deadline, f"not linked within {timeout} s: {seen}"
        time.sleep(0.02)


def _node_ids(proxy: RunningProxy, conversation_id: str) -> set[str]:
    response = get(proxy, f"/api/conversations/{conversation_id}")
    return {n["request_id"] for n in response.json()["nodes"]} if response.status_code == 200 else set()


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == {400: "invalid_request_error", 401: "authentication_error",
                                     404: "not_found_error"}.get(status, "api_error")  # fmt: skip
    return str(body["error"]["message"])


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def money(values: list[str | None]) -> Decimal:
    return sum((Decimal(value) for value in values if value is not None), Decimal(0))


def test_conversations_are_listed_with_their_totals_filtered_and_paged(api_proxy: RunningProxy) -> None:
    traffic = review(api_proxy)
    team = chat(api_proxy, "Summarise the incident report.", "Who was paged?", host=TEAM)
    later = chat(api_proxy, "What time is it in Tokyo?")
    wait_until_linked(api_proxy, {traffic.root: traffic.ids, team[0]: team, later[0]: later})

    page = get(api_proxy, "/api/conversations").json()
    assert page["total"] == 3
    assert [c["conversation_id"] for c in page["conversations"]] == [later[0], team[0], traffic.root]
    latest, incident, first = page["conversations"]
    nodes = tree(api_proxy, traffic.root)["nodes"]
    assert first == {
        "conversation_id": traffic.root,
        "domain": f"127.0.0.1:{api_proxy.port}",
        "account_id": f"127.0.0.1:{api_proxy.port}",  # no credential file: the domain
        "first_at": nodes[0]["timestamp"],
        "last_at": nodes[-1]["timestamp"],
        "request_count": 12,
        "branch_count": 6,  # main, subtask_1..3, the edit, the compaction
        "subtask_count": 3,
        "compact_count": 1,
        "models": ["claude-sonnet-5"],
        "input_tokens": sum(n["input_tokens"] for n in nodes),
        "output_tokens": sum(n["output_tokens"] for n in nodes),
        "cache_creation_input_tokens": sum(n["cache_creation_input_tokens"] for n in nodes),
        "cache_read_input_tokens": sum(n["cache_read_input_tokens"] for n in nodes),
        "cost_usd": f"{money([n['cost_usd'] for n in nodes]):f}",
        "latest_request_id": traffic.compacted[-1],
        "title": "Review the service configuration, please.",
    }
    assert Decimal(first["cost_usd"]) > 0
    assert (incident["domain"], incident["account_id"], incident["request_count"]) == (TEAM, "acc_team", 2)
    assert (incident["branch_count"], incident["subtask_count"], incident["compact_count"]) == (1, 0, 0)
    assert (incident["title"], incident["latest_request_id"]) == ("Summarise the incident report.", team[1])
    assert latest["title"] == "What time is it in Tokyo?"

    assert listed(api_proxy, domain=TEAM) == [team[0]]
    assert listed(api_proxy, domain=f"127.0.0.1:{api_proxy.port}") == [later[0], traffic.root]
    assert listed(api_proxy, account_id="acc_team") == [team[0]]
    assert listed(api_proxy, domain="nobody.example") == []
    # Active in the window: the last request at or after since, the first before until.
    assert listed(api_proxy, since=incident["first_at"]) == [later[0], team[0]]
    assert listed(api_proxy, since=incident["last_at"], until=latest["first_at"]) == [team[0]]
    assert listed(api_proxy, until=incident["first_at"]) == [traffic.root]
    middle = nodes[5]["timestamp"]
    assert listed(api_proxy, since=middle, until=incident["first_at"]) == [traffic.root], "started before since"

    assert listed(api_proxy, search="SERVICE config") == [traffic.root]
    assert listed(api_proxy, search="incident") == [team[0]]
    assert listed(api_proxy, search=traffic.nested[1]) == [traffic.root], "a request id finds its conversation"
    assert listed(api_proxy, search=team[0]) == [team[0]]
    assert listed(api_proxy, search=str(uuid.uuid4())) == []
    assert listed(api_proxy, search="%") == [], "no wildcards"

    paged = get(api_proxy, "/api/conversations", limit=2).json()
    assert ([c["conversation_id"] for c in paged["conversations"]], paged["total"]) == ([later[0], team[0]], 3)
    rest = get(api_proxy, "/api/conversations", limit=2, offset=2).json()
    assert (rest["conversations"], rest["total"]) == ([first], 3)
    filtered = get(api_proxy, "/api/conversations", domain=f"127.0.0.1:{api_proxy.port}", limit=1).json()
    assert ([c["conversation_id"] for c in filtered["conversations"]], filtered["total"]) == ([later[0]], 2)


def test_a_conversation_is_a_tree_of_branches_and_sub_agents(api_proxy: RunningProxy) -> None:
    traffic = review(api_proxy)
    wait_until_linked(api_proxy, {traffic.root: traffic.ids})

    whole = tree(api_proxy, traffic.root)
    assert whole["truncated"] is False
    assert whole["conversation"] == get(api_proxy, "/api/conversations").json()["conversations"][0]
    nodes = {n["request_id"]: n for n in whole["nodes"]}
    assert list(nodes) == sorted(traffic.ids, key=lambda i: (at(nodes[i]["timestamp"]), i)), "oldest first"

    def link(request_id: str) -> tuple[Any, ...]:
        node = nodes[request_id]
        return (node["branch_id"], node["parent_request_id"], node["is_subtask"], node["parent_task_request_id"],
                node["spawn_tool_use_id"])  # fmt: skip

    review_turn, tool_results, follow_up, summariser = traffic.main
    assert link(review_turn) == ("main", None, False, None, None)
    assert link(tool_results) == ("main", review_turn, False, None, None)
    assert link(follow_up) == ("main", tool_results, False, None, None)
    assert link(summariser) == ("main", follow_up, False, None, None)
    assert link(traffic.first[0]) == ("subtask_1", review_turn, True, review_turn, traffic.calls["first"])
    assert link(traffic.first[1]) == ("subtask_1", traffic.first[0], True, review_turn, traffic.calls["first"])
    assert link(traffic.second[0]) == ("subtask_2", review_turn, True, review_turn, traffic.calls["second"])
    nested_start, nested_next = traffic.nested
    assert link(nested_start) == ("subtask_3", traffic.first[1], True, traffic.first[1], traffic.calls["nested"])
    assert link(nested_next) == ("subtask_3", nested_start, True, traffic.first[1], traffic.calls["nested"])
    edit_branch = nodes[traffic.edited]["branch_id"]
    assert edit_branch.startswith("branch_")
    assert nodes[traffic.edited]["parent_request_id"] == tool_results, "the edit leaves where the original did"
    compact_branch = nodes[traffic.compacted[0]]["branch_id"]
    assert compact_branch.startswith("compact_")
    assert link(traffic.compacted[0])[:2] == (compact_branch, summariser)
    assert link(traffic.compacted[1])[:2] == (compact_branch, traffic.compacted[0])
    assert nodes[review_turn]["link_method"] == "new"
    assert nodes[nested_start]["link_method"] == "subagent"
    assert nodes[review_turn]["title"] == "Review the service configuration, please."
    assert {n["model"] for n in nodes.values()} == {"claude-sonnet-5"}
    assert {(n["state"], n["status"]) for n in nodes.values()} == {("complete", 200)}

    def on(*branches: str) -> list[dict[str, Any]]:
        return [n for n in nodes.values() if n["branch_id"] in branches]

    def totals(subset: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "request_count": len(subset),
            "input_tokens": sum(n["input_tokens"] for n in subset),
            "output_tokens": sum(n["output_tokens"] for n in subset),
            "cost_usd": money([n["cost_usd"] for n in subset]),
        }

    def sums(shown: dict[str, Any]) -> dict[str, Any]:
        return {**{k: shown[k] for k in ("request_count", "input_tokens", "output_tokens")},
                "cost_usd": Decimal(shown["cost_usd"])}  # fmt: skip

    branches = {b["branch_id"]: b for b in whole["branches"]}
    assert {name: (b["kind"], b["parent_branch_id"], b["first_request_id"]) for name, b in branches.items()} == {
        "main": ("main", None, review_turn),
        "subtask_1": ("subtask", "main", traffic.first[0]),
        "subtask_2": ("subtask", "main", traffic.second[0]),
        "subtask_3": ("subtask", "subtask_1", nested_start),
        edit_branch: ("branch", "main", traffic.edited),
        compact_branch: ("compact", "main", traffic.compacted[0]),
    }
    for name, branch in branches.items():
        own = [at(n["timestamp"]) for n in on(name)]
        assert sums(branch) == totals(on(name)), name
        assert (at(branch["first_at"]), at(branch["last_at"])) == (min(own), max(own)), name

    agents = {a["tool_use_id"]: a for a in whole["subagents"]}
    assert [a["branch_id"] for a in whole["subagents"]] == ["subtask_1", "subtask_2", "subtask_3"], "launch order"
    first, second, nested = (agents[traffic.calls[name]] for name in ("first", "second", "nested"))
    assert (first["spawning_request_id"], first["parent_tool_use_id"]) == (review_turn, None)
    assert (first["branch_id"], first["description"], first["nested_branch_ids"]) == (
        "subtask_1", "Explore area 1", ["subtask_3"],
    )  # fmt: skip
    assert sums(first) == totals(on("subtask_1", "subtask_3")), "its own requests and the nested sub-agent's"
    assert (second["spawning_request_id"], second["parent_tool_use_id"]) == (review_turn, None)
    assert (second["branch_id"], second["description"], second["nested_branch_ids"]) == (
        "subtask_2", "Explore area 2", [],
    )  # fmt: skip
    assert sums(second) == totals(on("subtask_2"))
    assert (nested["spawning_request_id"], nested["parent_tool_use_id"]) == (traffic.first[1], traffic.calls["first"])
    assert (nested["branch_id"], nested["nested_branch_ids"]) == ("subtask_3", [])
    assert sums(nested) == totals(on("subtask_3"))

    cut = tree(api_proxy, traffic.root, limit=3)
    assert cut["truncated"] is True
    assert cut["nodes"] == whole["nodes"][:3], "the oldest requests are kept"
    kept = {n["request_id"] for n in cut["nodes"]}
    assert all(n["parent_request_id"] in kept | {None} for n in cut["nodes"]), "every kept node's parent is kept"
    assert (cut["branches"], cut["subagents"], cut["conversation"]) == (
        whole["branches"], whole["subagents"], whole["conversation"],
    ), "totals cover the whole conversation"  # fmt: skip
    assert tree(api_proxy, traffic.root, limit=12)["truncated"] is False


def test_unknown_and_malformed_ids_and_parameters(api_proxy: RunningProxy) -> None:
    ids = chat(api_proxy, "Hello there.")
    wait_until_linked(api_proxy, {ids[0]: ids})

    unknown = uuid.uuid4()
    assert str(unknown) in error_of(get(api_proxy, f"/api/conversations/{unknown}"), 404)
    assert "expected a UUID" in error_of(get(api_proxy, "/api/conversations/not-a-uuid"), 400)
    for limit in (0, 10_001):
        assert f"limit='{limit}'" in error_of(get(api_proxy, f"/api/conversations/{ids[0]}", limit=limit), 400)
    cases: dict[str, dict[str, Any]] = {
        "limit='501'": {"limit": 501},
        "offset='-1'": {"offset": -1},
        "since='yesterday'": {"since": "yesterday"},
        "search=''": {"search": ""},
    }
    for needle, params in cases.items():
        assert needle in error_of(get(api_proxy, "/api/conversations", **params), 400), needle


def test_the_conversations_api_needs_the_key_and_storage(start_proxy: Callable[..., RunningProxy]) -> None:
    proxy = start_proxy(DASHBOARD_API_KEY=KEY)
    for path in ("/api/conversations", f"/api/conversations/{uuid.uuid4()}"):
        assert "X-API-Key" in error_of(httpx.get(f"{proxy.url}{path}"), 401), path
        assert "X-API-Key" in error_of(httpx.get(f"{proxy.url}{path}", headers={"x-api-key": "wrong"}), 401), path
        assert "Storage is off" in error_of(get(proxy, path), 503), path


def test_the_conversations_routes_are_documented(start_proxy: Callable[..., RunningProxy]) -> None:
    paths = httpx.get(f"{start_proxy().url}/docs/openapi.json").json()["paths"]

    def parameters(path: str) -> dict[str, str | None]:
        return {p["name"]: p.get("description") for p in paths[path]["get"]["parameters"]}

    assert parameters("/api/conversations").keys() == {"domain", "account_id", "since", "until", "search", "limit",
                                                       "offset"}  # fmt: skip
    assert parameters("/api/conversations")["search"]
    assert parameters("/api/conversations/{conversation_id}").keys() == {"conversation_id", "limit"}
    assert all(parameters("/api/conversations/{conversation_id}").values())
