"""Management API routes: conversations listed, and the tree of one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import PathParameter, QueryParameter
from litestar.types import ControllerRouterHandler

from nexus.application.ports.conversation_queries import (
    ConversationFilters,
    ConversationPage,
    ConversationQueries,
    ConversationTree,
)
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.entrypoints.http.api.params import (
    API_SECURITY,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    UUID_FORMAT,
    api_errors,
    clear_validation_errors,
    iso_timestamps,
    parse_path_id,
    storage_unavailable,
    utc,
)

DEFAULT_TREE_NODES = 2000
MAX_TREE_NODES = 10_000

ConversationId = Annotated[
    str,
    PathParameter(
        description="The conversation id: the x-request-id of its first request (a UUID)", schema_extra=UUID_FORMAT
    ),
]


async def provide_conversation_filters(
    *,
    request: Request[Any, Any, Any],
    domain: Annotated[str | None, QueryParameter(description="The domain of the conversation's first request")] = None,
    account_id: Annotated[
        str | None, QueryParameter(description="The account of the conversation's first request")
    ] = None,
    since: Annotated[
        datetime | None,
        QueryParameter(description="ISO 8601 (UTC when no offset): conversations whose last request is at or after it"),
    ] = None,
    until: Annotated[
        datetime | None,
        QueryParameter(description="ISO 8601 (UTC when no offset): conversations whose first request is before it"),
    ] = None,
    search: Annotated[
        str | None,
        QueryParameter(
            min_length=1,
            max_length=200,
            description="A conversation id or the id of any of its requests (a UUID), else case-insensitive text in"
            " the title",
        ),
    ] = None,
) -> ConversationFilters:
    iso_timestamps(request, "since", "until")
    return ConversationFilters(domain=domain, account_id=account_id, since=utc(since), until=utc(until), search=search)


class ConversationsController(Controller):
    path = "/conversations"
    tags = ["conversations"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {  # noqa: RUF012 -- as above
        QueriesUnavailable: storage_unavailable,
        ValidationException: clear_validation_errors({}),
    }

    @get("/", operation_id="ListConversations", summary="Conversations, most recently active first",
         dependencies={"filters": Provide(provide_conversation_filters)}, responses=api_errors(400, 503))  # fmt: skip
    async def list_conversations(
        self,
        conversation_queries: NamedDependency[ConversationQueries],
        filters: NamedDependency[ConversationFilters],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    ) -> ConversationPage:
        """One entry per conversation with its totals over every branch and sub-agent, ordered by
        its latest request (newest first); ``total`` counts all matches, not only this page.
        Every filter given must match."""
        return await conversation_queries.list_conversations(filters, limit=limit, offset=offset)

    @get("/{conversation_id:str}", operation_id="GetConversation", summary="One conversation as a tree",
         responses=api_errors(400, 404, 503))  # fmt: skip
    async def get_conversation(
        self,
        conversation_queries: NamedDependency[ConversationQueries],
        conversation_id: ConversationId,
        limit: Annotated[
            int,
            QueryParameter(
                ge=1, le=MAX_TREE_NODES, description="At most this many nodes: the oldest requests are kept"
            ),
        ] = DEFAULT_TREE_NODES,
    ) -> ConversationTree:
        """Its requests as nodes (oldest first, each with its parent request, branch and, for a
        sub-agent's requests, the launching request and tool call), its branches (``main``,
        ``branch`` for an edited message, ``subtask`` for a sub-agent, ``compact`` after a
        compaction) with the branch they leave, and each sub-agent's totals rolled up with
        those of the sub-agents it launched.

        With more requests than ``limit``, only the oldest ``limit`` are nodes (each node's
        parent is among them) and ``truncated`` is true; the branch and sub-agent totals always
        cover the whole conversation."""
        parsed = parse_path_id(conversation_id, "conversation id", "the x-request-id of its first request")
        tree = await conversation_queries.get_conversation(parsed, limit=limit)
        if tree is None:
            raise NotFoundException(f"No conversation with id {conversation_id}")
        return tree


CONVERSATION_HANDLERS: list[ControllerRouterHandler] = [ConversationsController]
