"""Decide where one request sits in its conversation (ADR 8).

Strongest evidence first, for each kind of request:
- One user message: the start of a sub-agent when a response earlier in the domain launched a
  sub-agent with exactly this prompt (same session preferred). With Claude Code's agent id and
  session id, an unmatched prompt still joins the session's latest launch.
- Several messages: the newest earlier request whose whole conversation is this one's minus
  the last exchange (the N-2 hash), then minus the last two (the grandparent fallback).
  Candidates of the same session, the same sub-agent and the same system prompt win.
  A sub-agent's request whose content no longer chains joins that sub-agent's previous one.
- A compaction's continuation: the summarising request whose response holds its summary, or
  with Claude Code's session id, the session's latest summarising request.
- Anything else starts a conversation whose id is its own request id.

Branches: a request whose parent already has another child with different content opens
``branch_<ts>`` (an edit); the same content again is a retry and joins that child's branch;
otherwise it inherits the parent's branch. Sub-agents stay on their ``subtask_N`` branch.
"""

from __future__ import annotations

from datetime import timedelta

from nexus.application.ports.conversation_history import (
    ConversationHistory,
    Link,
    LinkMethod,
    Node,
    Subject,
)
from nexus.domain.conversation.branches import MAIN, compact_branch, edit_branch, subtask_branch
from nexus.domain.conversation.compaction import summary_matches
from nexus.domain.conversation.subagents import AgentCall

SUBAGENT_WINDOW = timedelta(hours=24)
COMPACTION_WINDOW = timedelta(days=7)
_CONTENT_METHODS = frozenset({"chain", "grandparent"})


class ConversationLinker:
    def __init__(self, history: ConversationHistory) -> None:
        self._history = history

    async def link(self, subject: Subject) -> Link:
        facts = subject.facts
        if facts.prompt_key is not None:
            found = await self._as_subagent(subject, facts.prompt_key)
            if found is not None:
                return found
        for wanted, method in ((facts.parent_hash, "chain"), (facts.grandparent_hash, "grandparent")):
            if wanted is not None:
                parent = await self._content_parent(subject, wanted)
                if parent is not None:
                    return await self._follow(subject, parent, method)  # type: ignore[arg-type]
        if subject.agent_id and subject.session_id and facts.prompt_key is None:
            previous = await self._history.latest_of_agent(subject.session_id, subject.agent_id, subject.position)
            if previous is not None and previous.link.is_subtask:
                return await self._follow(subject, previous, "agent_session")
        if facts.continuation_key is not None:
            found = await self._as_continuation(subject, facts.continuation_key)
            if found is not None:
                return found
        return Link(conversation_id=subject.id, branch_id=MAIN)

    async def _content_parent(self, subject: Subject, message_hash: str) -> Node | None:
        candidates = await self._history.with_message_hash(subject.domain, message_hash, subject.position)
        if not candidates:
            return None

        def evidence(node: Node) -> tuple[bool, bool, bool]:
            return (
                subject.session_id is not None and node.session_id == subject.session_id,
                node.agent_id == subject.agent_id,
                subject.facts.system_hash is not None and node.system_hash == subject.facts.system_hash,
            )

        # Newest first already; max() keeps the first of equals, so the newest strongest wins.
        return max(candidates, key=evidence)

    async def _follow(self, subject: Subject, parent: Node, method: LinkMethod) -> Link:
        """Link as the next request after ``parent``: same sub-agent, a retry, an edit or inherit."""
        if parent.link.is_subtask:
            return Link(
                conversation_id=parent.link.conversation_id,
                branch_id=parent.link.branch_id,
                parent_request_id=parent.id,
                is_subtask=True,
                parent_task_request_id=parent.link.parent_task_request_id,
                spawn_tool_use_id=parent.link.spawn_tool_use_id,
                method=method,
            )
        # A compaction request is a child of the last turn too, but not an edit of the next one
        # (the turn after a cancelled compaction stays on its branch).
        siblings = [
            node
            for node in await self._history.children(parent.id, subject.position)
            if node.link.method in _CONTENT_METHODS and not node.summarises
        ]
        retried = [node for node in siblings if node.message_hash == subject.facts.message_hash]
        if retried:
            branch = retried[-1].link.branch_id
        elif siblings:
            taken = await self._history.branch_names(parent.link.conversation_id, subject.position)
            branch = edit_branch(subject.ts, taken)
        else:
            branch = parent.link.branch_id
        return Link(
            conversation_id=parent.link.conversation_id, branch_id=branch, parent_request_id=parent.id, method=method
        )

    async def _as_subagent(self, subject: Subject, prompt_key: str) -> Link | None:
        since = subject.ts - SUBAGENT_WINDOW
        spawners = await self._history.spawners(subject.domain, prompt_key, since, subject.position)
        same_session = [n for n in spawners if subject.session_id is not None and n.session_id == subject.session_id]
        for spawner in same_session or spawners:
            call = await self._free_call(
                subject, spawner, [c for c in spawner.agent_calls if c.prompt_key == prompt_key]
            )
            if call is not None:
                return await self._subtask(subject, spawner, call, "subagent")
        if subject.agent_id and subject.session_id:
            for spawner in await self._history.session_spawners(subject.session_id, since, subject.position):
                call = await self._free_call(subject, spawner, spawner.agent_calls, allow_taken=False)
                if call is not None:
                    return await self._subtask(subject, spawner, call, "agent_session")
        return None

    async def _free_call(
        self, subject: Subject, spawner: Node, calls: list[AgentCall], *, allow_taken: bool = True
    ) -> AgentCall | None:
        """The first of ``calls`` no other sub-agent started; a call started by the same agent
        (or, without agent ids, any started one) is a retry of that start and is taken again."""
        if not calls:
            return None
        claims = await self._history.claims(spawner.link.conversation_id, [c.id for c in calls], subject.position)
        by_call = {claim.link.spawn_tool_use_id: claim for claim in claims}
        for call in calls:
            claim = by_call.get(call.id)
            if claim is None or (subject.agent_id is not None and claim.agent_id == subject.agent_id):
                return call
        return calls[0] if allow_taken and subject.agent_id is None else None

    async def _subtask(self, subject: Subject, spawner: Node, call: AgentCall, method: LinkMethod) -> Link:
        # Numbered by launch, not by arrival: each launch in the conversation's responses has its
        # number (launches of earlier responses, then this response's tool calls in order), so
        # parallel and nested sub-agents get distinct numbers whichever request comes first.
        base = await self._history.launches_before(spawner.link.conversation_id, spawner.position)
        return Link(
            conversation_id=spawner.link.conversation_id,
            branch_id=subtask_branch(base + call.position),
            parent_request_id=spawner.id,
            is_subtask=True,
            parent_task_request_id=spawner.id,
            spawn_tool_use_id=call.id,
            method=method,
        )

    async def _as_continuation(self, subject: Subject, key: str) -> Link | None:
        summarisers = await self._history.summarisers(subject.domain, subject.ts - COMPACTION_WINDOW, subject.position)
        same_session = [
            s for s in summarisers if subject.session_id is not None and s.node.session_id == subject.session_id
        ]
        chosen = next((s.node for s in same_session + summarisers if summary_matches(key, s.response_text)), None)
        method: LinkMethod = "compact"
        if chosen is None and same_session:
            chosen, method = same_session[0].node, "compact_session"
        if chosen is None:
            return None
        siblings = await self._history.children(chosen.id, subject.position)
        retried = [n for n in siblings if n.message_hash == subject.facts.message_hash]
        if retried:
            branch = retried[-1].link.branch_id
        else:
            branch = compact_branch(
                subject.ts, await self._history.branch_names(chosen.link.conversation_id, subject.position)
            )
        return Link(
            conversation_id=chosen.link.conversation_id,
            branch_id=branch,
            parent_request_id=chosen.id,
            method=method,
        )
