"""The views of one conversation, as the original's ``?view=tree|timeline|analytics&branch=``:
the branch tree (the default), the timeline of its requests and one branch's analytics.

The timeline and the analytics each read the newest requests through
``ConversationQueries.conversation_activity``; the figures come from the domain
(``conversation.turns``, ``conversation.analytics``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Literal
from urllib.parse import urlencode

import msgspec

from nexus.application.ports.conversation_queries import (
    ActivityPage,
    ConversationQueries,
    ConversationTree,
    RequestActivity,
)
from nexus.domain.conversation.analytics import BranchAnalytics, branch_analytics
from nexus.domain.conversation.branches import MAIN, BranchKind, branch_kind
from nexus.domain.conversation.turns import StepKind, read_turns
from nexus.domain.outcome import is_error

View = Literal["tree", "timeline", "analytics"]
VIEWS: tuple[View, ...] = ("tree", "timeline", "analytics")
TIMELINE_ROWS = 400  # the newest; like the graph, a few hundred rows stay readable
# The newest requests a branch's figures are computed over: a whole day of Claude Code in one
# branch, read in tens of milliseconds (the query sends no bodies).
ANALYTICS_ROWS = 5000
STEP_LABELS: dict[StepKind, str] = {"prompt": "prompt", "tool_results": "tool results", "retry": "retry"}


class ViewChoice(msgspec.Struct, frozen=True, kw_only=True):
    """The view and branch to show; ``problems`` names the parameters that were ignored."""

    view: View
    branch: str | None  # as asked for, when the conversation has it: every view keeps it
    analysed: str | None  # the analytics' branch: the one asked for, else main
    problems: list[str]


def choose_view(view: str | None, branch: str | None, tree: ConversationTree) -> ViewChoice:
    problems: list[str] = []
    chosen: View = "tree"
    for known in VIEWS:
        if view == known:
            chosen = known
    if view and view != chosen:
        problems.append(f"There is no view {view[:40]!r} (only {', '.join(VIEWS)}): the tree is shown.")
    names = [b.branch_id for b in tree.branches]
    if branch and branch not in names:
        problems.append(f"This conversation has no branch {branch[:60]!r}: all of it is shown.")
        branch = None
    analysed = branch or (MAIN if MAIN in names else next(iter(names), None))
    return ViewChoice(view=chosen, branch=branch, analysed=analysed, problems=problems)


def view_url(conversation_id: uuid.UUID, *, domain: str | None, **query: str | None) -> str:
    """``/dashboard/conversations/{id}?view=…&branch=…``: the tree view and empty values left out."""
    values = {"view": query.pop("view", None), "branch": query.pop("branch", None), "domain": domain, **query}
    if values["view"] == "tree":
        values["view"] = None
    shown = {name: value for name, value in values.items() if value}
    path = f"/dashboard/conversations/{conversation_id}"
    return f"{path}?{urlencode(shown)}" if shown else path


class TimelineRow(msgspec.Struct, frozen=True, kw_only=True):
    request: RequestActivity
    kind: BranchKind | None  # of its branch; None while it is not linked
    step: str  # prompt, tool results, retry
    context_tokens: int | None  # input + cache read + cache creation
    answer: str  # what came back: the tools called, a reply, an error
    failed: bool


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    rows: list[TimelineRow]
    total: int
    truncated: bool


async def read_timeline(queries: ConversationQueries, conversation_id: uuid.UUID, branch: str | None) -> Timeline:
    page = await queries.conversation_activity(conversation_id, branch_id=branch, limit=TIMELINE_ROWS)
    kinds = read_turns(page.requests).kinds
    rows = [
        TimelineRow(
            request=request,
            kind=branch_kind(request.branch_id) if request.branch_id else None,
            step=STEP_LABELS[kinds[request.request_id]],
            context_tokens=_context_tokens(request),
            answer=_answer(request),
            failed=is_error(request.status, request.state),
        )
        for request in page.requests
    ]
    return Timeline(rows=rows, total=page.total, truncated=page.truncated)


class Analytics(msgspec.Struct, frozen=True, kw_only=True):
    branch: str
    figures: BranchAnalytics
    total: int
    truncated: bool


async def read_analytics(queries: ConversationQueries, conversation_id: uuid.UUID, branch: str) -> Analytics:
    page: ActivityPage = await queries.conversation_activity(conversation_id, branch_id=branch, limit=ANALYTICS_ROWS)
    return Analytics(branch=branch, figures=branch_analytics(page.requests), total=page.total, truncated=page.truncated)


def _context_tokens(request: RequestActivity) -> int | None:
    if request.input_tokens is None:
        return None
    return request.input_tokens + (request.cache_read_input_tokens or 0) + (request.cache_creation_input_tokens or 0)


def _answer(request: RequestActivity) -> str:
    if is_error(request.status, request.state):
        return f"error {request.status}" if request.status >= 400 else request.state.replace("_", " ")
    if request.tool_call_count:
        calls = "call" if request.tool_call_count == 1 else "calls"
        counted = Counter(request.tool_names).items()
        named = ", ".join(f"{name} ({count})" if count > 1 else name for name, count in counted)
        return f"{request.tool_call_count} tool {calls}" + (f": {named}" if named else "")
    return "reply" if request.state == "complete" else request.state.replace("_", " ")
