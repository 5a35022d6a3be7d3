"""The linker on PostgreSQL: late arrivals, old rows without facts, domains kept apart."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.linking import sql_link_work
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.exchange import Exchange
from nexus.application.linking.run import LinkCounts, link_pending
from nexus.application.recording.row import build_row
from tests.support.database import query

pytestmark = pytest.mark.integration

T0 = 1_790_000_000_000  # ms
SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def exchange(at_ms: int, messages: list[dict[str, Any]], answer: str, *, domain: str = "team.example") -> Exchange:
    body = {"model": "claude-sonnet-5", "max_tokens": 64, "system": SYSTEM, "messages": messages}
    response = {
        "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }  # fmt: skip
    return Exchange(
        request_id=str(uuid.uuid4()), method="POST", path="/v1/messages", query_string=b"", domain=domain,
        requested_model="claude-sonnet-5", request_headers=[(b"content-type", b"application/json")],
        request_body=json.dumps(body).encode(), status=200, response_headers=[(b"content-type", b"application/json")],
        response_chunks=[json.dumps(response).encode()], started_at_ms=at_ms, duration_s=0.5,
    )  # fmt: skip


async def store_and_link(url: str, *batches: list[Exchange]) -> list[LinkCounts]:
    """Store each batch as the recorder would, then run the linker once after each."""
    counts = []
    async with open_engine(url) as engine:
        await upgrade(engine)
        store = SqlAlchemyExchangeStore(engine)
        for batch in batches:
            await store.store([build_row(e, store_bodies=True) for e in batch])
            counts.append(await link_pending(lambda: sql_link_work(engine)))
    return counts


def links(url: str) -> dict[str, dict[str, Any]]:
    return {str(row["id"]): row for row in query(url, "SELECT * FROM exchanges ORDER BY ts")}


def test_a_parent_stored_after_its_child_takes_the_child_into_its_conversation(database_url: str) -> None:
    first = [user("Hello")]
    parent = exchange(T0, first, "Hi there")
    child = exchange(T0 + 5_000, [*first, assistant("Hi there"), user("Tell me more")], "More")

    [alone, late] = asyncio.run(store_and_link(database_url, [child], [parent]))

    rows = links(database_url)
    assert (alone.linked, late.linked, late.requeued, late.changed) == (1, 2, 1, 1)
    assert rows[child.request_id]["parent_request_id"] == uuid.UUID(parent.request_id)
    assert rows[child.request_id]["conversation_id"] == uuid.UUID(parent.request_id)
    [summary] = query(database_url, "SELECT * FROM conversations")
    assert (summary["conversation_id"], summary["request_count"]) == (uuid.UUID(parent.request_id), 2)
    assert summary["title"] == "Hello"


def test_rows_recorded_before_linking_existed_get_their_facts_from_the_stored_bodies(database_url: str) -> None:
    first = [user("Hello")]
    parent = exchange(T0, first, "Hi there")
    child = exchange(T0 + 5_000, [*first, assistant("Hi there"), user("Tell me more")], "More")
    asyncio.run(store_and_link(database_url, [parent, child]))
    query(
        database_url,
        "UPDATE exchanges SET facts_version = NULL, message_hash = NULL, parent_message_hash = NULL,"
        " conversation_id = NULL, branch_id = NULL, parent_request_id = NULL, linked_at = NULL, link_pending = true",
    )

    [counts] = asyncio.run(store_and_link(database_url, []))

    rows = links(database_url)
    assert counts.linked == 2
    assert rows[child.request_id]["parent_request_id"] == uuid.UUID(parent.request_id)
    assert rows[child.request_id]["message_hash"] is not None
    assert {row["facts_version"] for row in rows.values()} == {1}


def test_identical_conversations_in_two_domains_stay_apart(database_url: str) -> None:
    first = [user("Hello")]
    follow_up = [*first, assistant("Hi there"), user("Tell me more")]
    team_a = [
        exchange(T0, first, "Hi there", domain="a.example"),
        exchange(T0 + 2_000, follow_up, "x", domain="a.example"),
    ]
    team_b = [
        exchange(T0 + 1_000, first, "Hi there", domain="b.example"),
        exchange(T0 + 3_000, follow_up, "x", domain="b.example"),
    ]

    asyncio.run(store_and_link(database_url, team_a + team_b))

    rows = links(database_url)
    assert rows[team_a[1].request_id]["parent_request_id"] == uuid.UUID(team_a[0].request_id)
    assert rows[team_b[1].request_id]["parent_request_id"] == uuid.UUID(team_b[0].request_id)
    assert len(query(database_url, "SELECT * FROM conversations")) == 2
