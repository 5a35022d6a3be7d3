"""A conversation's requests read as turns, from the links and counters alone (no bodies).

A turn starts with a prompt (a user message, an edited one, a sub-agent's prompt, the first
request after a compaction) and goes on through the tool results the client sends back until
the model answers without calling a tool. Which request is which follows from its parent:
a parent whose answer called tools is continued with their results; after any other answer
the next request carries a new prompt. A resend of the same messages to the same parent on
the same branch (``message_hash`` equal: the linker keeps a retry on its branch) belongs to
the turn of the request it resends. A request on another branch than its parent starts a
turn of its own: a sub-agent's first request is the launching request's child, but its
prompt is new (the launch's tool result comes back on the launcher's branch later).

Reading bodies would also tell apart a prompt typed after interrupting a tool (it rides with
the tool results): that costs a decode per request, for a case rare enough to ignore here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

import msgspec

from nexus.domain.outcome import is_error

StepKind = Literal["prompt", "tool_results", "retry"]
COMPLETE = "complete"


class Step(Protocol):
    """What a request must tell to be placed in a turn."""

    @property
    def request_id(self) -> uuid.UUID: ...
    @property
    def parent_request_id(self) -> uuid.UUID | None: ...
    @property
    def branch_id(self) -> str | None: ...
    @property
    def message_hash(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def status(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def tool_call_count(self) -> int: ...


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """``reply_ms``: from the turn's first request to the end of its answer, when it has one
    (its last request succeeded without calling a tool)."""

    first_request_id: uuid.UUID
    started_at: datetime
    requests: int
    reply_ms: float | None


class Reading(msgspec.Struct, frozen=True):
    kinds: dict[uuid.UUID, StepKind]
    turns: list[Turn]
    tool_gaps_ms: list[float]  # per tool-results request: the client's time between call and results
    turn_of: dict[uuid.UUID, int] = msgspec.field(default_factory=dict)  # each step's index in ``turns``


def read_turns(steps: Sequence[Step]) -> Reading:
    """The kind of each step and the turns they make, oldest first. A step whose parent is not
    among ``steps`` opens a turn (a branch read alone starts with one)."""
    ordered = sorted(steps, key=lambda step: (step.timestamp, step.request_id))
    by_id = {step.request_id: step for step in ordered}
    kinds: dict[uuid.UUID, StepKind] = {}
    turn_of: dict[uuid.UUID, int] = {}
    members: list[list[Step]] = []
    first_sent: dict[tuple[str | None, uuid.UUID | None, str], uuid.UUID] = {}
    gaps: list[float] = []
    for step in ordered:
        parent = by_id.get(step.parent_request_id) if step.parent_request_id else None
        content = (step.branch_id, step.parent_request_id, step.message_hash) if step.message_hash else None
        resent = first_sent.get(content) if content else None
        if resent is not None:
            kinds[step.request_id], turn = "retry", turn_of[resent]
        elif parent is not None and _continues(step, parent) and parent.request_id in turn_of:
            kinds[step.request_id], turn = "tool_results", turn_of[parent.request_id]
            gaps.append(max(0.0, _ms_between(_end(parent), step.timestamp)))
        else:
            kinds[step.request_id], turn = "prompt", len(members)
            members.append([])
        if content and resent is None:
            first_sent[content] = step.request_id
        turn_of[step.request_id] = turn
        members[turn].append(step)
    return Reading(kinds=kinds, turns=[_turn(group) for group in members], tool_gaps_ms=gaps, turn_of=turn_of)


def _continues(step: Step, parent: Step) -> bool:
    """``step`` brings the results of its parent's tool calls, on the same line of work."""
    return parent.tool_call_count > 0 and parent.branch_id == step.branch_id


def _turn(group: list[Step]) -> Turn:
    first, last = group[0], group[-1]
    # A cancelled answer (the user pressed Esc) is no answer either, though not an error.
    answered = last.state == COMPLETE and not is_error(last.status, last.state) and last.tool_call_count == 0
    return Turn(
        first_request_id=first.request_id,
        started_at=first.timestamp,
        requests=len(group),
        reply_ms=_ms_between(first.timestamp, _end(last)) if answered else None,
    )


def _end(step: Step) -> datetime:
    return step.timestamp + timedelta(milliseconds=step.duration_ms)


def _ms_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000.0
