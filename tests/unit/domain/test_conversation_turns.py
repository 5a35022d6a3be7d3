"""Turns read from the links and counters of a branch's requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from nexus.domain.conversation.analytics import UNNAMED_TOOL, ToolCount, branch_analytics
from nexus.domain.conversation.turns import read_turns

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Request(msgspec.Struct, frozen=True, kw_only=True):
    request_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    parent_request_id: uuid.UUID | None = None
    message_hash: str | None = None
    branch_id: str | None = "main"
    timestamp: datetime
    duration_ms: float = 1000.0
    status: int = 200
    state: str = "complete"
    tool_call_count: int = 0
    tool_names: list[str] = msgspec.field(default_factory=list)
    model: str | None = "claude-haiku-4-5"
    betas: list[str] = msgspec.field(default_factory=list)
    input_tokens: int | None = 10
    cache_creation_input_tokens: int | None = 0
    cache_read_input_tokens: int | None = 0


def after(parent: Request | None, seconds: float, **fields: object) -> Request:
    return Request(
        parent_request_id=parent.request_id if parent else None,
        timestamp=START + timedelta(seconds=seconds),
        message_hash=str(uuid.uuid4()),
        **fields,  # type: ignore[arg-type]
    )


def test_tool_results_continue_a_turn_and_an_answer_ends_it() -> None:
    prompt = after(None, 0, tool_call_count=2, tool_names=["Read", "Bash"])
    results = after(prompt, 3, tool_call_count=1, tool_names=["Read"], duration_ms=2000)
    answer = after(results, 8)  # answers without a tool: the turn took 8 s + 1 s
    second = after(answer, 60, duration_ms=500)
    reading = read_turns([second, answer, prompt, results])  # any order

    assert [reading.kinds[r.request_id] for r in (prompt, results, answer, second)] == [
        "prompt", "tool_results", "tool_results", "prompt"]  # fmt: skip
    assert [(t.first_request_id, t.requests, t.reply_ms) for t in reading.turns] == [
        (prompt.request_id, 3, 9000.0),
        (second.request_id, 1, 500.0),
    ]
    assert reading.tool_gaps_ms == [2000.0, 3000.0], "from the end of the calling answer to the results"


def test_a_retry_joins_the_turn_it_resends_and_an_unfinished_turn_has_no_reply_time() -> None:
    prompt = after(None, 0, status=529, state="upstream_error", input_tokens=None)
    retry = Request(parent_request_id=None, message_hash=prompt.message_hash, timestamp=START + timedelta(seconds=2),
                    tool_call_count=1, tool_names=["Bash"])  # fmt: skip
    cancelled = after(retry, 5, state="client_cancelled")
    reading = read_turns([prompt, retry, cancelled])

    assert [reading.kinds[r.request_id] for r in (prompt, retry, cancelled)] == ["prompt", "retry", "tool_results"]
    assert [(t.requests, t.reply_ms) for t in reading.turns] == [(3, None)]


def test_a_sub_agent_started_by_a_tool_call_opens_its_own_turn() -> None:
    launch = after(None, 0, tool_call_count=2, tool_names=["Agent", "Agent"])
    first = after(launch, 1, branch_id="subtask_1")
    second = Request(parent_request_id=launch.request_id, message_hash=first.message_hash, branch_id="subtask_2",
                     timestamp=START + timedelta(seconds=1.5))  # fmt: skip
    results = after(launch, 9)
    reading = read_turns([launch, first, second, results])

    assert [reading.kinds[r.request_id] for r in (first, second, results)] == ["prompt", "prompt", "tool_results"]
    assert [t.first_request_id for t in reading.turns] == [launch.request_id, first.request_id, second.request_id]


def test_the_analytics_of_a_branch() -> None:
    prompt = after(None, 0, tool_call_count=3, tool_names=["Read", "Bash"])  # one block missing from the body
    results = after(prompt, 2, tool_call_count=1, tool_names=["Read"])
    answer = after(results, 4)
    second = after(answer, 30, duration_ms=4000)
    latest = after(second, 40, input_tokens=50_000, cache_read_input_tokens=90_000, cache_creation_input_tokens=10_000)
    failed = after(latest, 50, status=500, state="upstream_error", input_tokens=None)

    figures = branch_analytics([prompt, results, answer, second, latest, failed])

    assert figures.tools == [ToolCount("Read", 2), ToolCount("Bash", 1), ToolCount(UNNAMED_TOOL, 1)]
    assert (figures.tool_calls, figures.tool_time_ms) == (4, 2000.0)
    assert (figures.prompts, figures.turns, figures.answered_turns) == (4, 4, 3)
    assert (figures.reply_median_ms, figures.reply_max_ms) == (4000.0, 5000.0)
    assert (figures.inference_ms, figures.inference_median_ms) == (9000.0, 1000.0)
    assert figures.context is not None
    assert (figures.context.request_id, figures.context.tokens, figures.context.window) == (
        latest.request_id, 150_000, 200_000)  # fmt: skip
    assert (figures.context.percent, figures.context.level) == (75.0, "warn")


def test_a_branch_without_token_counts_has_no_context_figure() -> None:
    figures = branch_analytics([after(None, 0, input_tokens=None, status=500, state="upstream_error")])
    assert (figures.context, figures.answered_turns, figures.reply_median_ms) == (None, 0, None)
