"""Conversations: the list (searchable, filtered by time and domain, paged) and one conversation
with its branch tree drawn as a graph beside its transcript (``conversation_transcript``), its
branches and its sub-agents with their totals, or its timeline, or one branch's analytics
(``conversation_views``).

The list answers an htmx request (``HX-Request``) with its results only (the table, the total
and the pager); without JavaScript the same form reloads the whole page. Each conversation's
state is its latest request's (read by id for the page's rows: the summaries do not keep it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Template

from nexus.application.analysis.requests import Analyses
from nexus.application.ports.conversation_queries import (
    ConversationFilters,
    ConversationPage,
    ConversationQueries,
    ConversationTree,
)
from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import ExchangeQueries, QueriesUnavailable, RequestSummary
from nexus.application.ports.prompts import PromptUse, PromptUses
from nexus.application.use_cases.prompt_origin import prompt_origin
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.pages.analysis_panel import Panel, panel
from nexus.entrypoints.dashboard.pages.conversation_transcript import Transcript, read_transcript
from nexus.entrypoints.dashboard.pages.conversation_views import (
    VIEWS,
    Analytics,
    Timeline,
    ViewChoice,
    choose_view,
    read_analytics,
    read_timeline,
    view_url,
)
from nexus.entrypoints.dashboard.params import (
    MAX_PARAM,
    MAX_SEARCH,
    identifier,
    moment,
    moment_text,
    text,
    wants_fragment,
    whole,
)
from nexus.entrypoints.dashboard.render.graph import MAX_ROWS, conversation_graph

TABLE_ROWS = 50  # branches and sub-agents listed; the graph shows every one it draws

PAGE_SIZE = 50
TITLE_CHARS = 80
MAX_PAGE = 999_999
RESULTS_ID = "conversations-results"  # what the list's htmx requests swap
LIST_URL = "/dashboard/conversations"
# Every query parameter is read as text and checked here: a bad value is ignored (and named on
# the page), never a bare 400 in place of the page.
Text = Annotated[str | None, QueryParameter()]


class ListParams(msgspec.Struct, frozen=True, kw_only=True):
    """The list's parameters, normalised; ``problems`` names those that were ignored."""

    domain: str | None
    search: str | None
    since: datetime | None
    until: datetime | None
    since_text: str  # as the form shows it again
    until_text: str
    page: int
    problems: list[str]

    @classmethod
    def parse(
        cls, *, domain: str | None, search: str | None, since: str | None, until: str | None, page: str | None
    ) -> ListParams:
        problems: list[str] = []
        since_at, since_text = _moment("since", since, problems)
        until_at, until_text = _moment("until", until, problems)
        return cls(
            domain=text(domain, limit=MAX_PARAM),
            search=text(search, limit=MAX_SEARCH),
            since=since_at,
            until=until_at,
            since_text=since_text,
            until_text=until_text,
            page=whole(page, low=1, high=MAX_PAGE) or 1,
            problems=problems,
        )

    @property
    def filters(self) -> ConversationFilters:
        return ConversationFilters(domain=self.domain, since=self.since, until=self.until, search=self.search)

    @property
    def keep(self) -> dict[str, Any]:
        """What the domain filter resubmits (the page is not: another domain starts at page 1)."""
        return {"search": self.search, "since": self.since_text, "until": self.until_text}

    def query(self, **changes: object) -> str:
        """``?search=...&page=...`` with ``changes`` applied; empty values (and page 1) left out."""
        values: dict[str, object] = {"domain": self.domain, **self.keep, "page": self.page}
        values.update(changes)
        if values.get("page") == 1:
            values.pop("page")
        shown = {name: value for name, value in values.items() if value not in (None, "")}
        return "?" + urlencode(shown) if shown else ""


@get("/conversations", name="dashboard-conversations")
async def conversations_page(
    *,
    request: Request[Any, Any, Any],
    dashboard_queries: NamedDependency[DashboardQueries],
    conversation_queries: NamedDependency[ConversationQueries],
    exchange_queries: NamedDependency[ExchangeQueries],
    domain: Text = None,
    search: Text = None,
    since: Text = None,
    until: Text = None,
    page: Text = None,
) -> Template:
    params = ListParams.parse(domain=domain, search=search, since=since, until=until, page=page)
    listing: ConversationPage | None = None
    latest: dict[uuid.UUID, RequestSummary] = {}
    unavailable: str | None = None
    try:
        listing = await conversation_queries.list_conversations(
            params.filters, limit=PAGE_SIZE, offset=(params.page - 1) * PAGE_SIZE
        )
        found = await exchange_queries.summaries_by_ids([c.latest_request_id for c in listing.conversations])
        latest = {summary.request_id: summary for summary in found}
    except QueriesUnavailable as exc:
        unavailable = str(exc)
    pages = max(1, -(-listing.total // PAGE_SIZE)) if listing else 1
    values: dict[str, Any] = {
        "params": params,
        "listing": listing,
        "latest": latest,
        "unavailable": unavailable,
        "page_number": params.page,
        "pages": pages,
        "page_size": PAGE_SIZE,
        "results_id": RESULTS_ID,
        "list_url": LIST_URL,
        "title_chars": TITLE_CHARS,
        "request_url": request_url,
    }
    if wants_fragment(request):
        return Template("conversations_results.html", context={"domain": params.domain, **values})
    context = await page_context("conversations", dashboard_queries, domain=params.domain, keep=params.keep, **values)
    return Template("conversations.html", context=context)


@get("/conversations/{conversation_id:str}", name="dashboard-conversation")
async def conversation_page(
    *,
    dashboard_queries: NamedDependency[DashboardQueries],
    conversation_queries: NamedDependency[ConversationQueries],
    exchange_queries: NamedDependency[ExchangeQueries],
    prompt_uses: NamedDependency[PromptUses],
    analyses: NamedDependency[Analyses],
    conversation_id: Annotated[str, PathParameter()],
    domain: Text = None,
    analysis_branch: Text = None,
    view: Text = None,
    branch: Text = None,
) -> Template:
    domain = text(domain, limit=MAX_PARAM)
    tree: ConversationTree | None = None
    choice: ViewChoice | None = None
    timeline: Timeline | None = None
    analytics: Analytics | None = None
    transcript: Transcript | None = None
    started_from: PromptUse | None = None
    analysis: Panel | None = None
    problem: str | None = None
    unavailable: str | None = None
    status = 200
    parsed = identifier(conversation_id)
    if parsed is None:
        status, problem = 400, "This is not a conversation id: expected a UUID (the x-request-id of its first request)."
    if parsed is not None:
        try:
            tree = await conversation_queries.get_conversation(parsed, limit=MAX_ROWS)
            if tree is not None:
                choice = choose_view(text(view, limit=MAX_PARAM), text(branch, limit=MAX_PARAM), tree)
                if choice.view == "timeline":
                    timeline = await read_timeline(conversation_queries, parsed, choice.branch)
                if choice.view == "analytics" and choice.analysed is not None:
                    analytics = await read_analytics(conversation_queries, parsed, choice.analysed)
                if choice.view == "tree":
                    transcript = await read_transcript(conversation_queries, parsed)
        except QueriesUnavailable as exc:
            status, unavailable = 503, str(exc)
        else:
            if tree is None:
                status, problem = 404, "No conversation has this id."
            else:
                started_from = await prompt_origin(parsed, exchanges=exchange_queries, uses=prompt_uses)
                if choice is not None and choice.view == "tree":
                    analysis = await panel(analyses, parsed, text(analysis_branch, limit=MAX_PARAM) or "main")
    context = await page_context(
        "conversations",
        dashboard_queries,
        domain=domain,
        keep={"view": choice.view, "branch": choice.branch} if choice else None,
        conversation_id=conversation_id,
        tree=tree,
        choice=choice,
        views=VIEWS,
        timeline=timeline,
        analytics=analytics,
        started_from=started_from,
        analysis=analysis,
        transcript=transcript,
        graph=(
            conversation_graph(tree, request_url, texts=transcript.node_texts)
            if tree and transcript is not None
            else None
        ),
        problem=problem,
        unavailable=unavailable,
        list_url=LIST_URL,
        table_rows=TABLE_ROWS,
        request_url=request_url,
        view_url=_view_urls(parsed, domain),
    )
    return Template("conversation_detail.html", context=context, status_code=status)


def _view_urls(conversation_id: uuid.UUID | None, domain: str | None) -> Callable[..., str] | None:
    """``view_url(view=..., branch=...)`` for the template: this conversation, this domain."""
    if conversation_id is None:
        return None
    known = conversation_id
    return lambda **query: view_url(known, domain=domain, **query)


def request_url(request_id: uuid.UUID) -> str:
    """The request page (``/dashboard/requests/{id}``) a node, or any request id shown, opens."""
    return f"/dashboard/requests/{request_id}"


def _moment(name: str, raw: str | None, problems: list[str]) -> tuple[datetime | None, str]:
    """The time and the text the form shows again; a value that is not a time is named and ignored."""
    given = text(raw, limit=64) or ""
    found = moment(given) if given else None
    if given and found is None:
        problems.append(f"{name} is not a date and time ({given!r}): ignored")
    return found, moment_text(found) if found else given
