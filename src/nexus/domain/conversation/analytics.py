"""One branch's figures, as the original dashboard's analytics tab showed them: tool calls by
tool, time to reply per turn, prompts, inference time, and how full the context is."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import msgspec

from nexus.domain.context_windows import FillLevel, context_window, fill_level, fill_percent
from nexus.domain.conversation.turns import Step, read_turns

UNNAMED_TOOL = "(unnamed)"  # a call counted in the stream whose block the stored answer lacks


class Measured(Step, Protocol):
    """A step with what it cost: its model, tokens and the tools its answer called."""

    @property
    def model(self) -> str | None: ...
    @property
    def betas(self) -> list[str]: ...
    @property
    def tool_names(self) -> list[str]: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def cache_creation_input_tokens(self) -> int | None: ...
    @property
    def cache_read_input_tokens(self) -> int | None: ...


class ToolCount(msgspec.Struct, frozen=True):
    name: str
    count: int


class ContextFill(msgspec.Struct, frozen=True, kw_only=True):
    """The prompt of ``request_id`` (input, cache reads and writes) against its model's window."""

    request_id: uuid.UUID
    model: str | None
    tokens: int
    window: int
    percent: float
    level: FillLevel


class BranchAnalytics(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    tool_calls: int
    tools: list[ToolCount]  # most called first
    tool_time_ms: float  # between an answer calling tools and the request bringing their results
    prompts: int  # user interactions: the turns opened by a prompt
    turns: int
    answered_turns: int
    reply_median_ms: float | None
    reply_max_ms: float | None
    inference_ms: float  # the model's time: the requests' durations added up
    inference_median_ms: float | None
    context: ContextFill | None  # None when no request has its token counts


def branch_analytics(requests: Sequence[Measured]) -> BranchAnalytics:
    """The figures of one branch's ``requests`` (any order)."""
    reading = read_turns(requests)
    replies = [turn.reply_ms for turn in reading.turns if turn.reply_ms is not None]
    durations = [request.duration_ms for request in requests]
    tools = _tool_counts(requests)
    return BranchAnalytics(
        requests=len(requests),
        tool_calls=sum(tool.count for tool in tools),
        tools=tools,
        tool_time_ms=sum(reading.tool_gaps_ms),
        prompts=sum(1 for kind in reading.kinds.values() if kind == "prompt"),
        turns=len(reading.turns),
        answered_turns=len(replies),
        reply_median_ms=statistics.median(replies) if replies else None,
        reply_max_ms=max(replies) if replies else None,
        inference_ms=sum(durations),
        inference_median_ms=statistics.median(durations) if durations else None,
        context=_latest_context(requests),
    )


def _tool_counts(requests: Sequence[Measured]) -> list[ToolCount]:
    counts: Counter[str] = Counter()
    for request in requests:
        counts.update(request.tool_names)
        missing = request.tool_call_count - len(request.tool_names)
        if missing > 0:
            counts[UNNAMED_TOOL] += missing
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0] == UNNAMED_TOOL, item[0]))
    return [ToolCount(name, count) for name, count in ranked]


def _latest_context(requests: Sequence[Measured]) -> ContextFill | None:
    """The newest request that has token counts: a failed one carries none."""
    counted = [request for request in requests if request.input_tokens is not None]
    if not counted:
        return None
    latest = max(counted, key=lambda request: (request.timestamp, request.request_id))
    tokens = (
        (latest.input_tokens or 0) + (latest.cache_read_input_tokens or 0) + (latest.cache_creation_input_tokens or 0)
    )
    window = context_window(latest.model, latest.betas)
    percent = fill_percent(tokens, window)
    return ContextFill(
        request_id=latest.request_id,
        model=latest.model,
        tokens=tokens,
        window=window,
        percent=percent,
        level=fill_level(percent),
    )
