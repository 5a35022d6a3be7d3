"""What the conversation linker reads of stored history, and where its work comes from.

Every read is bounded to rows *before* the subject in the total order ``(ts, id)``: a link is a
function of earlier history only, which is what makes linking deterministic whatever the timing
and makes re-linking (the rebuild command) idempotent. Only linked ``inference`` rows (those
with a conversation) are ever returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import msgspec

from nexus.domain.conversation.facts import LinkFacts
from nexus.domain.conversation.subagents import AgentCall


class LinkingUnavailable(Exception):
    """The history cannot be read or written right now (database away): try the batch later.

    Adapters raise it for every read and write, so that a failure of the linker itself (any
    other exception) can be told apart."""


LinkMethod = Literal["new", "chain", "grandparent", "subagent", "agent_session", "compact", "compact_session"]


class Position(msgspec.Struct, frozen=True, order=True):
    """A row's place in the linking order."""

    ts: datetime
    id: uuid.UUID


class Link(msgspec.Struct, frozen=True, kw_only=True):
    """Where a request sits in its conversation, and how that was decided (``method``)."""

    conversation_id: uuid.UUID
    branch_id: str
    parent_request_id: uuid.UUID | None = None
    is_subtask: bool = False
    parent_task_request_id: uuid.UUID | None = None
    spawn_tool_use_id: str | None = None
    method: LinkMethod = "new"


class Node(msgspec.Struct, frozen=True, kw_only=True):
    """A linked request as candidates are seen."""

    id: uuid.UUID
    ts: datetime
    session_id: str | None = None
    agent_id: str | None = None
    message_hash: str | None = None
    system_hash: str | None = None
    summarises: bool = False
    link: Link
    agent_calls: list[AgentCall] = msgspec.field(default_factory=list)

    @property
    def position(self) -> Position:
        return Position(self.ts, self.id)


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """A request to link: identity on the wire, content facts, and its current link if any."""

    id: uuid.UUID
    ts: datetime
    domain: str | None
    session_id: str | None = None
    agent_id: str | None = None
    facts: LinkFacts
    previous: Link | None = None
    first_time: bool = True

    @property
    def position(self) -> Position:
        return Position(self.ts, self.id)


class Summariser(msgspec.Struct, frozen=True):
    """A compaction request and the first text of its response (the summary)."""

    node: Node
    response_text: str


@runtime_checkable
class ConversationHistory(Protocol):
    """Reads of linked rows of one domain (``None`` is a domain of its own) before a position."""

    async def with_message_hash(self, domain: str | None, message_hash: str, before: Position) -> list[Node]:
        """Rows whose whole conversation hashes to ``message_hash``, newest first (bounded)."""
        ...

    async def spawners(self, domain: str | None, prompt_key: str, since: datetime, before: Position) -> list[Node]:
        """Rows since ``since`` whose response launched a sub-agent with this prompt, newest first."""
        ...

    async def session_spawners(self, session_id: str, since: datetime, before: Position) -> list[Node]:
        """Rows of a session since ``since`` whose response launched any sub-agent, newest first."""
        ...

    async def claims(self, conversation_id: uuid.UUID, tool_use_ids: Sequence[str], before: Position) -> list[Node]:
        """Rows that started a sub-agent for one of these tool calls."""
        ...

    async def launches_before(self, conversation_id: uuid.UUID, before: Position) -> int:
        """How many sub-agent launches (``agent_calls``) the conversation's rows before hold."""
        ...

    async def children(self, parent_id: uuid.UUID, before: Position) -> list[Node]:
        """Rows linked to ``parent_id`` as their parent, oldest first."""
        ...

    async def branch_names(self, conversation_id: uuid.UUID, before: Position) -> set[str]: ...

    async def latest_of_agent(self, session_id: str, agent_id: str, before: Position) -> Node | None:
        """The newest row of one sub-agent (same session and agent id)."""
        ...

    async def summarisers(self, domain: str | None, since: datetime, before: Position) -> list[Summariser]:
        """Compaction requests since ``since``, newest first (bounded)."""
        ...


@runtime_checkable
class LinkWork(ConversationHistory, Protocol):
    """One unit of linking work (a transaction): history reads plus the pending queue."""

    async def pending(self, limit: int) -> list[Subject]:
        """Rows waiting to be linked, in linking order."""
        ...

    async def save(self, subject: Subject, link: Link) -> None:
        """Record a row's link and take it off the queue."""
        ...

    async def linked_after(self, subject: Subject) -> bool:
        """Whether rows of the subject's domain after it are already linked (it arrived late)."""
        ...

    async def requeue_dependents(self, subject: Subject, link: Link) -> int:
        """Put back on the queue the linked rows after a late subject whose link may depend on it."""
        ...

    async def requeue_children(self, subject: Subject) -> int:
        """Put back on the queue the rows linked to a subject whose own link changed."""
        ...
