"""Reading conversations back: the list and the tree of one, for the management API; one
conversation's requests with what the dashboard's timeline and analytics need, and with what
its transcript shows (each request's prompt text and the blocks of its answer).

The structs are what the API answers, field for field, with the conventions of
``exchange_queries``: costs are exact decimal strings (``None`` when nothing in the sum has a
price), timestamps timezone-aware UTC datetimes. Every method raises ``QueriesUnavailable``
when storage is off or unreachable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.domain.conversation.branches import BranchKind

__all__ = [
    "ActivityPage",
    "BranchKind",
    "ConversationBranch",
    "ConversationFilters",
    "ConversationNode",
    "ConversationPage",
    "ConversationQueries",
    "ConversationSummary",
    "ConversationTree",
    "QueriesUnavailable",
    "ReplyBlock",
    "RequestActivity",
    "SubagentTotals",
    "TranscriptPage",
    "TranscriptStep",
]

# A transcript shows the start of each block; the request page has all of it.
REPLY_BLOCK_CHARS = 4000


class ConversationFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Which conversations to list; every filter given must match (``None`` matches anything).

    ``domain`` and ``account_id`` are those of the conversation's first request.
    ``since``/``until`` select the conversations active in the window: the last request at or
    after ``since``, the first one before ``until``.
    ``search`` is a conversation id or the id of any request in the conversation when it is a
    UUID, else a case-insensitive substring of the title.
    """

    domain: str | None = None
    account_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None


class ConversationSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation as listed: sums over all its requests, every branch and sub-agent.

    ``conversation_id`` is the request id of its first request. ``branch_count`` counts every
    branch (``main`` included), ``subtask_count`` and ``compact_count`` those of sub-agents and
    compactions. ``title`` is the first user message's text, trimmed.
    """

    conversation_id: uuid.UUID
    domain: str | None
    account_id: str | None
    first_at: datetime
    last_at: datetime
    request_count: int
    branch_count: int
    subtask_count: int
    compact_count: int
    models: list[str]
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str | None
    latest_request_id: uuid.UUID
    title: str | None


class ConversationPage(msgspec.Struct, frozen=True):
    conversations: list[ConversationSummary]
    total: int


class RequestFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What one request of a conversation used and how it ended, as every view of it shows.

    ``model`` is the one that answered, or the one asked for when none did; token counts are
    ``None`` where the answer carried no usage.
    """

    model: str | None
    state: str
    status: int
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None
    cost_usd: str | None
    duration_ms: float


class ConversationNode(RequestFigures, frozen=True, kw_only=True):
    """One request of the tree.

    ``parent_request_id`` is the request it continues (``None`` for the conversation's root);
    a sub-agent's requests carry the request that launched the sub-agent in
    ``parent_task_request_id`` and the launching tool call in ``spawn_tool_use_id``.
    ``link_method`` says how the link was found (``new``, ``chain``, ``grandparent``,
    ``subagent``, ``agent_session``, ``compact``, ``compact_session``).
    """

    request_id: uuid.UUID
    timestamp: datetime
    branch_id: str | None
    parent_request_id: uuid.UUID | None
    parent_task_request_id: uuid.UUID | None
    is_subtask: bool
    spawn_tool_use_id: str | None
    link_method: str | None
    title: str | None


class ConversationBranch(msgspec.Struct, frozen=True, kw_only=True):
    """One branch with its totals over the whole conversation.

    ``parent_branch_id`` is the branch of the request the branch's first request continues:
    ``main`` for an edit or a compaction of the main line, the launching request's branch for
    a sub-agent, ``None`` for ``main`` (or any branch starting at a conversation root).
    """

    branch_id: str
    kind: BranchKind
    parent_branch_id: str | None
    first_request_id: uuid.UUID
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: str | None
    first_at: datetime
    last_at: datetime


class SubagentTotals(msgspec.Struct, frozen=True, kw_only=True):
    """One sub-agent, keyed by the tool call that launched it (``tool_use_id``, in the response
    of ``spawning_request_id``).

    ``request_count``, the tokens and ``cost_usd`` are rolled up: its own requests plus those of
    every sub-agent launched from them, recursively; ``nested_branch_ids`` names those nested
    sub-agents' branches (all depths). ``parent_tool_use_id`` is the tool call of the sub-agent
    that launched this one (``None`` when launched from the main line, an edit or a compaction).
    ``description`` is the launching tool call's ``description`` input.
    """

    tool_use_id: str
    spawning_request_id: uuid.UUID | None
    parent_tool_use_id: str | None
    branch_id: str | None
    description: str | None
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: str | None
    nested_branch_ids: list[str]


class ConversationTree(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation's requests and the totals of its branches and sub-agents.

    ``nodes`` are oldest first and bounded by the query's limit: when the conversation has
    more requests, the oldest ones are kept and ``truncated`` is true. A request's parent is
    always older than it, so every kept node's parent is kept too (the tree stays connected);
    the newest requests are read with ``GET /api/requests?conversation_id=…``. ``branches``
    and ``subagents`` always cover the whole conversation, truncated or not.
    """

    conversation: ConversationSummary
    nodes: list[ConversationNode]
    branches: list[ConversationBranch]
    subagents: list[SubagentTotals]
    truncated: bool


class RequestActivity(RequestFigures, frozen=True, kw_only=True):
    """One request of a conversation as its timeline and analytics read it.

    ``message_hash`` is equal for two requests sending the same messages (a retry).
    ``tool_names`` has the name of each ``tool_use`` block of the stored answer, in order;
    ``tool_call_count`` counts them in the response as it came (the stored answer of a cut
    stream may have fewer). ``betas`` are the request's ``anthropic-beta`` header values.
    """

    request_id: uuid.UUID
    timestamp: datetime
    branch_id: str | None
    parent_request_id: uuid.UUID | None
    is_subtask: bool
    message_hash: str | None
    tool_call_count: int
    tool_names: list[str]
    betas: list[str]


class ActivityPage(msgspec.Struct, frozen=True):
    """The newest requests asked for, oldest first; ``total`` counts all that matched."""

    requests: list[RequestActivity]
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.requests)


class ReplyBlock(msgspec.Struct, frozen=True, kw_only=True):
    """One block of a stored answer, as a transcript shows it.

    ``kind`` is the block's ``type`` (``text``, ``thinking``, ``tool_use``, ...; empty when it
    has none); ``text`` is its text, its thinking or, for a tool call, its input as JSON, cut
    at ``REPLY_BLOCK_CHARS`` characters; ``length`` is how many characters it had before the
    cut; ``name`` is a tool call's name.
    """

    kind: str
    text: str
    length: int
    name: str | None = None


class TranscriptStep(msgspec.Struct, frozen=True, kw_only=True):
    """One request of a conversation with what its transcript shows.

    The link fields are those of ``RequestActivity`` (what placing it in a turn needs).
    ``prompt_text`` is the text of its last user message (``None`` for tool results only, or
    a request recorded before revision 0010); ``blocks`` the stored answer's blocks in order;
    ``error`` the message of an error answer; ``stop_reason`` the answer's.
    """

    request_id: uuid.UUID
    timestamp: datetime
    branch_id: str | None
    parent_request_id: uuid.UUID | None
    message_hash: str | None
    model: str | None
    state: str
    status: int
    duration_ms: float
    tool_call_count: int
    cost_usd: str | None
    prompt_text: str | None
    blocks: list[ReplyBlock]
    error: str | None
    stop_reason: str | None


class TranscriptPage(msgspec.Struct, frozen=True):
    """The oldest requests asked for, oldest first (the graph draws the same ones);
    ``truncated`` when the conversation has more."""

    steps: list[TranscriptStep]
    truncated: bool


@runtime_checkable
class ConversationQueries(Protocol):
    """Every method raises ``QueriesUnavailable`` when storage is off or unreachable."""

    async def list_conversations(self, filters: ConversationFilters, *, limit: int, offset: int) -> ConversationPage:
        """Matching conversations, most recently active first, and how many match in all."""
        ...

    async def get_conversation(self, conversation_id: uuid.UUID, *, limit: int) -> ConversationTree | None:
        """The tree with at most ``limit`` nodes; ``None`` for an unknown conversation."""
        ...

    async def conversation_activity(
        self, conversation_id: uuid.UUID, *, branch_id: str | None, limit: int
    ) -> ActivityPage:
        """The conversation's newest ``limit`` requests (of ``branch_id`` only, when given),
        oldest first; an unknown conversation or branch has none."""
        ...

    async def conversation_transcript(self, conversation_id: uuid.UUID, *, limit: int) -> TranscriptPage:
        """The conversation's oldest ``limit`` requests with their prompt text and answer,
        oldest first; an unknown conversation has none."""
        ...
