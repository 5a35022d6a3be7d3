"""The transcript beside a conversation's graph: its requests read as turns (``domain``'s
``read_turns``), each with its own prompt and what came back, and the text the graph writes
beside each node and the turn a tap on it opens.

A turn is a prompt and the tool results sent after it, until the model answers without a
tool call: its heading is the prompt (the last user message of its first request), its body
every request's answer in order, thinking and tool calls folded. The requests read are the
oldest ones, as the graph draws them, so every node has its turn.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

import msgspec
from markupsafe import Markup

from nexus.application.ports.conversation_queries import ConversationQueries, TranscriptStep
from nexus.domain.conversation.branches import BranchKind, branch_kind
from nexus.domain.conversation.turns import StepKind, read_turns
from nexus.domain.outcome import is_error
from nexus.entrypoints.dashboard.render.graph import MAX_ROWS, NodeText
from nexus.entrypoints.dashboard.render.transcript import render_reply

HEADING_CHARS = 160  # of the prompt in a turn's heading; the whole prompt is inside
TITLE_CHARS = 200  # of the prompt in a node's tooltip
STEP_NAMES: dict[StepKind, str] = {"prompt": "prompt", "tool_results": "tool results", "retry": "retry"}


class TranscriptRequest(msgspec.Struct, frozen=True, kw_only=True):
    step: TranscriptStep
    kind: StepKind
    anchor: str  # the element id of this request in the transcript
    did: str  # what came back, in a few words: tool calls, a reply, an error
    reply: Markup
    failed: bool


class TranscriptTurn(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # 1-based, in time order
    anchor: str  # the element id of the turn: ``turn-<its first request>``
    branch_id: str | None
    kind: BranchKind | None
    started_at: datetime
    prompt: str | None  # its first request's last user message (cut at 2,000 characters when recorded)
    requests: list[TranscriptRequest]

    @property
    def heading(self) -> str:
        """The prompt's start, or what the turn is when its text was not recorded."""
        if self.prompt:
            return _short(self.prompt, HEADING_CHARS)
        return f"Turn {self.number} ({STEP_NAMES[self.requests[0].kind]}, text not recorded)"

    @property
    def answer(self) -> str:
        """What the turn came to: its last request's outcome."""
        return self.requests[-1].did


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    turns: list[TranscriptTurn]
    truncated: bool
    node_texts: dict[uuid.UUID, NodeText]


async def read_transcript(queries: ConversationQueries, conversation_id: uuid.UUID) -> Transcript:
    page = await queries.conversation_transcript(conversation_id, limit=MAX_ROWS)
    reading = read_turns(page.steps)
    grouped: dict[int, list[TranscriptStep]] = {}
    for step in sorted(page.steps, key=lambda s: (s.timestamp, s.request_id)):
        grouped.setdefault(reading.turn_of[step.request_id], []).append(step)
    turns = [_turn(number, steps, reading.kinds) for number, steps in enumerate(grouped.values(), start=1)]
    return Transcript(turns=turns, truncated=page.truncated, node_texts=_node_texts(turns))


def _turn(number: int, steps: list[TranscriptStep], kinds: dict[uuid.UUID, StepKind]) -> TranscriptTurn:
    first = steps[0]
    return TranscriptTurn(
        number=number,
        anchor=f"turn-{first.request_id}",
        branch_id=first.branch_id,
        kind=branch_kind(first.branch_id) if first.branch_id else None,
        started_at=first.timestamp,
        prompt=first.prompt_text,
        requests=[
            TranscriptRequest(
                step=step,
                kind=kinds[step.request_id],
                anchor=f"step-{step.request_id}",
                did=_did(step),
                reply=render_reply(step.blocks, error=step.error),
                failed=is_error(step.status, step.state),
            )
            for step in steps
        ],
    )


def _node_texts(turns: list[TranscriptTurn]) -> dict[uuid.UUID, NodeText]:
    """A turn's first node is labelled with its prompt; the ones after it with what they did."""
    texts = {}
    for turn in turns:
        prompt = _short(turn.prompt, TITLE_CHARS) if turn.prompt else turn.heading
        for position, request in enumerate(turn.requests):
            label = turn.heading if position == 0 else f"↳ {request.did}"
            texts[request.step.request_id] = NodeText(
                label=label,
                title=f"Turn {turn.number}: {prompt}\n{STEP_NAMES[request.kind]}: {request.did}",
                href=f"#{turn.anchor}",
            )
    return texts


def _did(step: TranscriptStep) -> str:
    if is_error(step.status, step.state):
        return f"error {step.status}" if step.status >= 400 else step.state.replace("_", " ")
    names = [block.name or "?" for block in step.blocks if block.kind.endswith("tool_use")]
    if names or step.tool_call_count:
        counted = ", ".join(f"{name} ({count})" if count > 1 else name for name, count in Counter(names).items())
        calls = max(step.tool_call_count, len(names))
        return f"{calls} tool call{'' if calls == 1 else 's'}" + (f": {counted}" if counted else "")
    text = next((block.text for block in reversed(step.blocks) if block.kind == "text" and block.text.strip()), None)
    if step.state != "complete":
        return step.state.replace("_", " ")
    return f"reply: {_short(text, 80)}" if text else "reply"


def _short(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
