"""Requests: the recorded exchanges listed, filtered, searched and paged (one of them in full
is ``request_detail``).

The list reads one page (``list_requests`` with a limit) and the previews of its rows (the
start of each prompt and answer, one more statement by id); under ``HX-Request``
it answers only the results fragment, which the filter form and the pager swap in place (with
``hx-push-url``), while the same form and links work as plain GETs without JavaScript.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import (
    ExchangeQueries,
    QueriesUnavailable,
    RequestFilters,
    RequestPage,
    RequestPreview,
)
from nexus.domain.conversation.branches import branch_kind
from nexus.domain.outcome import Outcome
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import (
    MAX_PARAM,
    MAX_SEARCH,
    http_status,
    identifier,
    integer,
    moment,
    moment_text,
    text,
    wants_fragment,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000
STATES = get_args(Outcome)
REQUEST_TYPES = ("inference", "query_evaluation", "quota")
LIST_PARAMETERS = (
    *("domain", "model", "request_type", "state", "status", "q"),
    *("conversation_id", "since", "until", "offset", "limit"),
)


class ListParams(msgspec.Struct, frozen=True, kw_only=True):
    """The list's parameters as given (text, for the form) and the problems found in them."""

    domain: str | None = None
    model: str | None = None
    request_type: str | None = None
    state: str | None = None
    status: str | None = None
    q: str | None = None
    conversation_id: str | None = None
    since: str | None = None
    until: str | None = None
    offset: int = 0
    limit: int = PAGE_SIZE
    problems: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: dict[str, str | None]) -> ListParams:
        problems: list[str] = []
        names = ("domain", "model", "request_type", "state", "status", "q", "conversation_id")
        values = {name: text(raw.get(name)) for name in names}
        for name in ("domain", "model", "request_type"):
            if len(values[name] or "") > MAX_PARAM:
                problems.append(f"The {name.replace('_', ' ')} is longer than {MAX_PARAM} characters.")
        if values["q"] and len(values["q"]) > MAX_SEARCH:
            problems.append(f"The search text is longer than {MAX_SEARCH} characters.")
        if values["state"] and values["state"] not in STATES:
            problems.append(f"Unknown state {values['state']!r}: expected one of {', '.join(STATES)}.")
        if values["conversation_id"] and identifier(values["conversation_id"]) is None:
            problems.append(f"Invalid conversation id {values['conversation_id'][:40]!r}: expected a UUID.")
        if values["status"] and http_status(values["status"]) is None:
            problems.append(f"Invalid status {values['status']!r}: expected an HTTP status code (100-599).")
        moments: dict[str, str | None] = {}
        for name in ("since", "until"):
            given = text(raw.get(name))
            found = moment(given) if given else None
            if given and found is None:
                problems.append(f"Invalid {name} {given!r}: expected a date and time such as 2026-11-23T10:00.")
            moments[name] = moment_text(found) if found else given
        offset = integer(raw.get("offset"), default=0, low=0, high=MAX_OFFSET, what="offset", problems=problems)
        limit = integer(
            raw.get("limit"), default=PAGE_SIZE, low=1, high=MAX_PAGE_SIZE, what="page size", problems=problems
        )
        return cls(
            domain=values["domain"],
            model=values["model"],
            request_type=values["request_type"],
            state=values["state"],
            status=values["status"],
            q=values["q"],
            conversation_id=values["conversation_id"],
            since=moments["since"],
            until=moments["until"],
            offset=offset,
            limit=limit,
            problems=tuple(problems),
        )

    def filters(self) -> RequestFilters:
        return RequestFilters(
            domain=self.domain,
            model=self.model,
            request_type=self.request_type,
            status=http_status(self.status) if self.status else None,
            state=self.state,
            conversation_id=identifier(self.conversation_id) if self.conversation_id else None,
            since=moment(self.since) if self.since else None,
            until=moment(self.until) if self.until else None,
            text=self.q,
        )

    def keep(self) -> dict[str, Any]:
        """What the layout's domain form resubmits: every filter but the domain (and the page)."""
        return {
            "model": self.model,
            "request_type": self.request_type,
            "state": self.state,
            "status": self.status,
            "q": self.q,
            "conversation_id": self.conversation_id,
            "since": self.since,
            "until": self.until,
            "limit": self.limit if self.limit != PAGE_SIZE else None,
        }

    def query(self, **changes: object) -> str:
        """``?domain=...&model=...`` with ``changes`` applied; empty values and defaults are left out."""
        values: dict[str, object] = {"domain": self.domain, **self.keep(), "offset": self.offset or None}
        values.update(changes)
        return "?" + urlencode({name: value for name, value in values.items() if value not in (None, "", 0)})


class Pager(msgspec.Struct, frozen=True, kw_only=True):
    total: int
    first: int  # 1-based position of the first row shown (0 when none)
    last: int
    previous: str | None  # query strings of the neighbouring pages
    next: str | None


@get("/requests", name="dashboard-requests")
async def requests_page(
    request: Request[Any, Any, Any],
    exchange_queries: NamedDependency[ExchangeQueries],
    dashboard_queries: NamedDependency[DashboardQueries],
) -> Template:
    """Query parameters (all optional, read as text so a bad one is explained on the page): domain,
    model, request_type, state, status, q, conversation_id, since, until, offset, limit."""
    params = ListParams.parse({name: request.query_params.get(name) for name in LIST_PARAMETERS})
    page: RequestPage | None = None
    previews: dict[uuid.UUID, RequestPreview] = {}
    unavailable: str | None = None
    status_code = 400 if params.problems else 200
    if not params.problems:
        try:
            page = await exchange_queries.list_requests(
                params.filters(),
                limit=params.limit,
                offset=params.offset,
                # A text search reads every row it matches to count them: count the first ones.
                count_up_to=SEARCH_COUNT_LIMIT if params.q else None,
            )
            previews = await exchange_queries.previews(page.requests)
        except QueriesUnavailable as exc:
            unavailable = str(exc)  # said on the page (200, as the other lists), the form still works
    context = await page_context(
        "requests",
        dashboard_queries,
        domain=params.domain,
        keep=params.keep(),
        params=params,
        result=page,
        previews=previews,
        preview_chars=PREVIEW_CHARS,
        branch_kind=branch_kind,
        pager=_pager(params, page) if page else None,
        unavailable=unavailable,
        states=STATES,
        request_types=_choices(REQUEST_TYPES, params.request_type),
        page_sizes=_choices((25, 50, 100, 200), params.limit),
    )
    headers = {"vary": "HX-Request"}
    if wants_fragment(request):
        # htmx does not swap error statuses: the fragment always comes with 200, its message inside.
        # The address pushed is the tidy one (no empty form fields).
        headers["hx-push-url"] = f"/dashboard/requests{params.query()}".removesuffix("?")
        return Template("requests_results.html", context={**context, "fragment": True}, headers=headers)
    return Template("requests.html", context=context, status_code=status_code, headers=headers)


SEARCH_COUNT_LIMIT = 1000
PREVIEW_CHARS = 120  # of the prompt and of the answer: two short lines in a row


def _pager(params: ListParams, page: RequestPage) -> Pager:
    shown = len(page.requests)
    previous = max(params.offset - params.limit, 0)
    if params.offset >= page.total > 0:  # past the end: back to the last page
        previous = (page.total - 1) // params.limit * params.limit
    has_next = shown > 0 and (params.offset + shown < page.total or (not page.total_is_exact and shown == params.limit))
    return Pager(
        total=page.total,
        first=params.offset + 1 if shown else 0,
        last=params.offset + shown,
        previous=params.query(offset=previous) if params.offset > 0 and page.total > 0 else None,
        next=params.query(offset=params.offset + params.limit) if has_next else None,
    )


def _choices(known: tuple[Any, ...], given: Any) -> list[Any]:
    return [*known, given] if given is not None and given not in known else list(known)
