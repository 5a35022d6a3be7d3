"""An in-memory conversation history: stored rows by id, read as the ports' docstrings say.

``MemoryHistory`` implements both ``ConversationHistory`` (the linker's reads) and ``LinkWork``
(the queue of rows waiting to be linked), so the linker and the ``link_pending`` loop run over it
exactly as over the database. Every read sees only linked rows (a link and not waiting to be
re-linked) strictly before a position in ``(ts, id)`` order; domain-scoped reads treat ``None`` as
a domain of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nexus.application.linking.run import LinkCounts, link_pending
from nexus.application.ports.conversation_history import Link, LinkWork, Node, Position, Subject, Summariser
from nexus.domain.conversation.compaction import response_text
from nexus.domain.conversation.facts import LinkFacts, link_facts

READ_LIMIT = 50  # what the "bounded" reads return at most, like the database's LIMIT
DOMAIN = "example.test"
_STARTS = frozenset({"subagent", "agent_session"})


@dataclass
class StoredRow:
    """One stored inference request, its response message and its link (None until linked)."""

    id: uuid.UUID
    ts: datetime
    domain: str | None
    facts: LinkFacts
    session_id: str | None = None
    agent_id: str | None = None
    response: Any = None
    link: Link | None = None
    pending: bool = True
    first_time: bool = True

    @property
    def position(self) -> Position:
        return Position(self.ts, self.id)

    @property
    def linked(self) -> Link:
        assert self.link is not None, f"row {self.id} is not linked"
        return self.link

    def node(self) -> Node:
        return Node(
            id=self.id,
            ts=self.ts,
            session_id=self.session_id,
            agent_id=self.agent_id,
            message_hash=self.facts.message_hash,
            system_hash=self.facts.system_hash,
            summarises=self.facts.summarises,
            link=self.linked,
            agent_calls=list(self.facts.agent_calls),
        )

    def subject(self) -> Subject:
        return Subject(
            id=self.id,
            ts=self.ts,
            domain=self.domain,
            session_id=self.session_id,
            agent_id=self.agent_id,
            facts=self.facts,
            previous=self.link,
            first_time=self.first_time,
        )


class MemoryHistory:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, StoredRow] = {}

    # Test helpers

    def add(
        self,
        body: Any,
        response: Any = None,
        *,
        ts: datetime,
        domain: str | None = DOMAIN,
        session_id: str | None = None,
        agent_id: str | None = None,
        id: uuid.UUID | None = None,
        link: Link | None = None,
    ) -> Subject:
        """Store a request (and its response message). With ``link`` it is already linked,
        otherwise it waits on the queue. Returns it as the linker would see it now."""
        row = StoredRow(
            id=id or uuid.uuid4(),
            ts=ts,
            domain=domain,
            facts=link_facts(body, response),
            session_id=session_id,
            agent_id=agent_id,
            response=response,
            link=link,
            pending=link is None,
            first_time=link is None,
        )
        assert row.id not in self.rows, f"duplicate row {row.id}"
        self.rows[row.id] = row
        return row.subject()

    def link_of(self, row_id: uuid.UUID) -> Link:
        return self.rows[row_id].linked

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[LinkWork | None]:
        yield self

    async def link_all(self) -> LinkCounts:
        """Link everything waiting, in order, as the background linker does. The loop turns a
        linker failure into a new conversation; here it fails the test instead."""
        counts = await link_pending(self.unit_of_work)
        assert counts.failed == 0, "the linker failed (see the log)"
        return counts

    def requeue_all(self) -> None:
        """Put every row back on the queue, as the rebuild command does."""
        for row in self.rows.values():
            row.pending, row.first_time = True, False

    # ConversationHistory

    def _linked(self, before: Position) -> list[StoredRow]:
        """Linked rows before ``before``, newest first."""
        rows = [row for row in self.rows.values() if _is_linked(row) and row.position < before]
        return sorted(rows, key=lambda row: row.position, reverse=True)

    async def with_message_hash(self, domain: str | None, message_hash: str, before: Position) -> list[Node]:
        rows = [r for r in self._linked(before) if r.domain == domain and r.facts.message_hash == message_hash]
        return [row.node() for row in rows[:READ_LIMIT]]

    async def spawners(self, domain: str | None, prompt_key: str, since: datetime, before: Position) -> list[Node]:
        return [
            row.node()
            for row in self._linked(before)
            if row.domain == domain
            and row.ts >= since
            and any(call.prompt_key == prompt_key for call in row.facts.agent_calls)
        ]

    async def session_spawners(self, session_id: str, since: datetime, before: Position) -> list[Node]:
        return [
            row.node()
            for row in self._linked(before)
            if row.session_id == session_id and row.ts >= since and row.facts.agent_calls
        ]

    async def claims(self, conversation_id: uuid.UUID, tool_use_ids: Sequence[str], before: Position) -> list[Node]:
        return [
            row.node()
            for row in reversed(self._linked(before))
            if row.linked.conversation_id == conversation_id
            and row.linked.method in _STARTS
            and row.linked.spawn_tool_use_id in tool_use_ids
        ]

    async def launches_before(self, conversation_id: uuid.UUID, before: Position) -> int:
        return sum(
            len(row.facts.agent_calls) for row in self._linked(before) if row.linked.conversation_id == conversation_id
        )

    async def children(self, parent_id: uuid.UUID, before: Position) -> list[Node]:
        return [row.node() for row in reversed(self._linked(before)) if row.linked.parent_request_id == parent_id]

    async def branch_names(self, conversation_id: uuid.UUID, before: Position) -> set[str]:
        return {row.linked.branch_id for row in self._linked(before) if row.linked.conversation_id == conversation_id}

    async def latest_of_agent(self, session_id: str, agent_id: str, before: Position) -> Node | None:
        rows = (r for r in self._linked(before) if r.session_id == session_id and r.agent_id == agent_id)
        return next((row.node() for row in rows), None)

    async def summarisers(self, domain: str | None, since: datetime, before: Position) -> list[Summariser]:
        rows = [r for r in self._linked(before) if r.domain == domain and r.ts >= since and r.facts.summarises]
        return [Summariser(row.node(), response_text(row.response)) for row in rows[:READ_LIMIT]]

    # LinkWork

    async def pending(self, limit: int) -> list[Subject]:
        rows = sorted((row for row in self.rows.values() if row.pending), key=lambda row: row.position)
        return [row.subject() for row in rows[:limit]]

    async def save(self, subject: Subject, link: Link) -> None:
        row = self.rows[subject.id]
        row.link, row.pending, row.first_time = link, False, False

    async def linked_after(self, subject: Subject) -> bool:
        return any(_is_linked(row) for row in self._after(subject))

    async def requeue_dependents(self, subject: Subject, link: Link) -> int:
        return self._requeue(row for row in self._after(subject) if _may_depend(row, subject, link))

    async def requeue_children(self, subject: Subject) -> int:
        return self._requeue(row for row in self.rows.values() if row.link and row.link.parent_request_id == subject.id)

    def _after(self, subject: Subject) -> list[StoredRow]:
        """Rows of the subject's domain after it."""
        return [r for r in self.rows.values() if r.domain == subject.domain and r.position > subject.position]

    def _requeue(self, rows: Iterable[StoredRow]) -> int:
        """Put linked rows back on the queue; the number that were not already waiting."""
        requeued = [row for row in rows if _is_linked(row)]
        for row in requeued:
            row.pending, row.first_time = True, False
        return len(requeued)


def _is_linked(row: StoredRow) -> bool:
    return row.link is not None and not row.pending


def _may_depend(row: StoredRow, subject: Subject, link: Link) -> bool:
    """Whether a later linked row's link could change now that ``subject`` is linked as ``link``:
    it chains to it, shares its parent (edit or retry), could be the sub-agent it launched or
    compete for a launch, continues a compaction, shares its session or numbers sub-agents in
    its conversation."""
    their_link = row.link
    if their_link is None:
        return False
    mine, theirs = subject.facts, row.facts
    prompt_keys = {call.prompt_key for call in mine.agent_calls}
    if mine.prompt_key is not None:
        prompt_keys.add(mine.prompt_key)
    return (
        (mine.message_hash is not None and mine.message_hash in (theirs.parent_hash, theirs.grandparent_hash))
        or (mine.parent_hash is not None and theirs.parent_hash == mine.parent_hash)
        or (theirs.prompt_key is not None and theirs.prompt_key in prompt_keys)
        or (mine.summarises and theirs.continuation_key is not None)
        or (subject.session_id is not None and row.session_id == subject.session_id)
        or (their_link.method in _STARTS and their_link.conversation_id == link.conversation_id)
    )
