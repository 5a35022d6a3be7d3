"""The original claude-nexus dashboard's URLs, redirected to the page that shows the same here,
so bookmarks and links pasted into tickets and chats keep working after a switch.

``301 Moved Permanently``: each old URL means one page here for good, and link checkers and
bookmark tools may update on a permanent redirect. Every dashboard response is ``no-store``, so
no browser keeps the redirect either, and a later version can still answer these paths
differently. The handlers sit behind the same login as every page (signing in comes back here
with the query kept). Targets are built from fixed paths, a UUID re-formatted by ``uuid.UUID``
and url-encoded values, never from the request's own path or host: no open redirect. A
malformed id answers 400 with an explanation; a well-formed id of nothing answers 404 on the
page it leads to.

``/dashboard/usage`` and ``/dashboard/prompts`` are the same paths here (the usage page reads
``domain`` and ``days`` too), and the request list is ``/dashboard/requests`` in both.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal
from urllib.parse import urlencode

from litestar import get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.prompt_catalog import PromptCatalog
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.pages.conversation_views import VIEWS
from nexus.entrypoints.dashboard.params import MAX_PARAM, identifier, text

MOVED: Literal[301] = 301
Text = Annotated[str | None, QueryParameter()]


@get("/conversation/{conversation_id:str}", name="original-conversation")
async def original_conversation(
    dashboard_queries: NamedDependency[DashboardQueries],
    conversation_id: Annotated[str, PathParameter()],
    view: Text = None,
    branch: Text = None,
) -> Redirect | Template:
    """``?view=tree|timeline|analytics&branch=`` mean the same here."""
    parsed = identifier(conversation_id)
    if parsed is None:
        return await _bad_link(
            dashboard_queries, "This is not a conversation id: conversation ids are UUIDs.", "/dashboard/conversations"
        )
    chosen = text(view, limit=16)
    query = {"view": chosen if chosen in VIEWS else None, "branch": text(branch, limit=MAX_PARAM)}
    return _moved(f"/dashboard/conversations/{parsed}", query)


@get("/conversation/{conversation_id:str}/messages", name="original-conversation-messages")
async def original_conversation_messages(
    dashboard_queries: NamedDependency[DashboardQueries], conversation_id: Annotated[str, PathParameter()]
) -> Redirect | Template:
    """The original's message list of a conversation: here its transcript, on the tree view of
    the conversation page (the transcript covers every branch, so no ``branch`` is kept)."""
    parsed = identifier(conversation_id)
    if parsed is None:
        return await _bad_link(
            dashboard_queries, "This is not a conversation id: conversation ids are UUIDs.", "/dashboard/conversations"
        )
    return _moved(f"/dashboard/conversations/{parsed}", {}, fragment="transcript")


@get("/request/{request_id:str}", name="original-request")
async def original_request(
    dashboard_queries: NamedDependency[DashboardQueries], request_id: Annotated[str, PathParameter()]
) -> Redirect | Template:
    parsed = identifier(request_id)
    if parsed is None:
        return await _bad_link(
            dashboard_queries, "This is not a request id: request ids are UUIDs.", "/dashboard/requests"
        )
    return _moved(f"/dashboard/requests/{parsed}", {})


@get("/token-usage", name="original-token-usage")
async def original_token_usage(
    account_id: Annotated[str | None, QueryParameter(name="accountId")] = None,
    domain: Text = None,
) -> Redirect:
    """The usage page: its account choice is the original's ``accountId``."""
    query = {"account": text(account_id, limit=MAX_PARAM), "domain": text(domain, limit=MAX_PARAM)}
    return _moved("/dashboard/usage", query)


@get("/usage/chart", name="original-usage-chart")
async def original_usage_chart(domain: Text = None, days: Text = None) -> Redirect:
    """The original's hourly chart fragment of its Domain Stats page: here the usage page, which
    draws the same hours and reads the same ``domain`` and ``days``."""
    return _moved("/dashboard/usage", {"domain": text(domain, limit=MAX_PARAM), "days": text(days, limit=8)})


@get("/prompts/{prompt_id:str}", name="original-prompt")
async def original_prompt(
    dashboard_queries: NamedDependency[DashboardQueries],
    prompt_catalog: NamedDependency[PromptCatalog],
    prompt_id: Annotated[str, PathParameter()],
) -> Redirect | Template:
    """The original named a prompt by its file's base name; here a file may name its prompt
    otherwise, so the file is looked up first."""
    wanted = text(prompt_id, limit=MAX_PARAM + 1)
    if wanted is None or len(wanted) > MAX_PARAM:
        return await _bad_link(dashboard_queries, "This is not a prompt name.", "/dashboard/prompts")
    entries = await prompt_catalog.entries(None)
    found = next((entry.name for entry in entries if PurePath(entry.file).stem == wanted), wanted)
    return _moved("/dashboard/prompts", {"name": found})


def _moved(path: str, query: dict[str, str | None], *, fragment: str = "") -> Redirect:
    shown = {name: value for name, value in query.items() if value}
    target = f"{path}?{urlencode(shown)}" if shown else path
    return Redirect(f"{target}#{fragment}" if fragment else target, status_code=MOVED)


async def _bad_link(queries: DashboardQueries, problem: str, elsewhere: str) -> Template:
    context = await page_context("", queries, domain=None, problem=problem, elsewhere=elsewhere)
    return Template("bad_link.html", context=context, status_code=400)
