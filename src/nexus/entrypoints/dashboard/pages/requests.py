"""Requests: the recorded exchanges listed (filtered, searched, paged) and each one in full.

The list reads one page (``list_requests`` with a limit) and nothing more; under ``HX-Request``
it answers only the results fragment, which the filter form and the pager swap in place (with
``hx-push-url``), while the same form and links work as plain GETs without JavaScript.

The detail page shows the facts, the rendered conversation (``render_conversation``), the masked
headers, the bodies as pretty JSON and the stream's events parsed from the raw SSE bytes. Every
database value reaches the HTML through Jinja's autoescape or the renderer's escaping.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any, get_args
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import (
    ExchangeQueries,
    QueriesUnavailable,
    RequestDetail,
    RequestFilters,
    RequestPage,
    StoredBody,
)
from nexus.domain.content_encoding import decoded_body
from nexus.domain.outcome import Outcome
from nexus.domain.sse import SseEvent, sse_events
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
from nexus.entrypoints.dashboard.render.conversation import render_conversation

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000
STATES = get_args(Outcome)
REQUEST_TYPES = ("inference", "query_evaluation", "quota")
RAW_JSON_LIMIT = 200_000  # characters of pretty-printed JSON shown per body
TIMELINE_HEAD = 200  # events listed from the start of a stream...
TIMELINE_TAIL = 5  # ...and from its end, when there are more
SUMMARY_LENGTH = 80
LIST_PARAMETERS = (
    *("domain", "model", "request_type", "state", "status", "q"),
    *("conversation_id", "since", "until", "offset", "limit"),
)


# --- the list -----------------------------------------------------------------------------------


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
        except QueriesUnavailable as exc:
            unavailable = str(exc)  # said on the page (200, as the other lists), the form still works
    context = await page_context(
        "requests",
        dashboard_queries,
        domain=params.domain,
        keep=params.keep(),
        params=params,
        result=page,
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


# --- one request --------------------------------------------------------------------------------


class RawJson(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    total: int
    truncated: bool


class StreamEvent(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # 1-based position in the stream
    name: str
    index: int | None
    summary: str
    size: int
    offset: int  # bytes of the stream up to and including this event


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    head: list[StreamEvent]
    tail: list[StreamEvent]
    omitted: int  # events between head and tail, not listed
    total_events: int
    total_bytes: int


@get("/requests/{request_id:str}", name="dashboard-request")
async def request_page(
    exchange_queries: NamedDependency[ExchangeQueries],
    dashboard_queries: NamedDependency[DashboardQueries],
    request_id: FromPath[str],
    domain: FromQuery[str | None] = None,
) -> Template:
    domain = text(domain, limit=MAX_PARAM)
    detail: RequestDetail | None = None
    problem: str | None = None
    unavailable: str | None = None
    timeline: Timeline | None = None
    timeline_note: str | None = None
    status_code = 200
    parsed = identifier(request_id)
    if parsed is None:
        problem = "That is not a request id: request ids are UUIDs (the x-request-id header the client got)."
        status_code = 400
    if parsed is not None:
        try:
            detail = await exchange_queries.get_request(parsed)
            if detail is None:
                problem = "No recorded request has this id."
                status_code = 404
            else:
                timeline, timeline_note = await _timeline(exchange_queries, detail)
        except QueriesUnavailable as exc:
            unavailable = str(exc)
            status_code = 503
    context = await page_context(
        "requests",
        dashboard_queries,
        domain=domain,
        request_id=request_id[:MAX_PARAM],
        detail=detail,
        problem=problem,
        unavailable=unavailable,
        conversation=render_conversation(detail.request_body, detail.response_body) if detail else Markup(),
        request_json=_raw_json(detail.request_body) if detail and detail.request_body is not None else None,
        response_json=_raw_json(detail.response_body) if detail and detail.response_body is not None else None,
        timeline=timeline,
        timeline_note=timeline_note,
        back=f"/dashboard/requests{'?' + urlencode({'domain': domain}) if domain else ''}",
    )
    return Template("request_detail.html", context=context, status_code=status_code)


def _raw_json(value: object) -> RawJson:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) <= RAW_JSON_LIMIT:
        return RawJson(text=text, total=len(text), truncated=False)
    return RawJson(text=text[:RAW_JSON_LIMIT], total=len(text), truncated=True)


async def _timeline(queries: ExchangeQueries, detail: RequestDetail) -> tuple[Timeline | None, str | None]:
    """The stream's events, or why there are none to show."""
    if not detail.stream:
        return None, "Not a streamed request: the response came as one body."
    raw: StoredBody | None = await queries.response_raw(detail.request_id)
    if raw is None:
        return None, "No response bytes were stored for this request."
    if "text/event-stream" not in (raw.content_type or "").lower():
        return None, f"The response was not an event stream ({raw.content_type or 'no content type'})."
    data = decoded_body(raw.data, raw.content_encoding.encode("latin-1", "replace") if raw.content_encoding else None)
    if data is None:
        return None, f"The stream is stored {raw.content_encoding}-encoded, which cannot be read here."
    return parse_timeline(data), None


def parse_timeline(stream: bytes, *, head: int = TIMELINE_HEAD, tail: int = TIMELINE_TAIL) -> Timeline:
    """The SSE events of ``stream`` in order: the first ``head`` summarised, and when there are
    more, the last ``tail`` too; the others are only counted (never decoded)."""
    first: list[StreamEvent] = []
    last: deque[tuple[int, SseEvent]] = deque(maxlen=tail)
    count = 0
    for event in sse_events(stream):
        count += 1
        if count <= head:
            first.append(_event(count, event))
        else:
            last.append((count, event))
    ending = [_event(*item) for item in last]
    return Timeline(
        head=first,
        tail=ending,
        omitted=max(count - len(first) - len(ending), 0),
        total_events=count,
        total_bytes=len(stream),
    )


def _event(number: int, sse: SseEvent) -> StreamEvent:
    try:
        payload: Any = json.loads(sse.data) if sse.data else None
    except ValueError:
        payload = None
    event = payload if isinstance(payload, dict) else {}
    name = sse.name.decode("utf-8", "replace") or str(event.get("type") or "") or "(unnamed)"
    index = event.get("index")
    summary = _summary(name, event) if event else _short(sse.data.decode("utf-8", "replace"))
    if payload is None and sse.data:
        summary = "(not JSON) " + summary
    return StreamEvent(
        number=number,
        name=name[:SUMMARY_LENGTH],
        index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        summary=summary,
        size=sse.end - sse.start,
        offset=sse.end,
    )


def _summary(name: str, event: dict[str, Any]) -> str:
    """A line on what an event says (plain text: the template escapes it)."""
    if name in ("content_block_stop", "message_stop", "ping"):
        return ""
    describe = _DESCRIBE.get(name)
    text = describe(event) if describe else json.dumps(event, ensure_ascii=False, default=str)
    return _short(text)


def _message_start(event: dict[str, Any]) -> str:
    message = _mapping(event.get("message"))
    parts = [str(message.get("id") or ""), str(message.get("model") or ""), _usage_text(_mapping(message.get("usage")))]
    return " · ".join(part for part in parts if part)


def _block_start(event: dict[str, Any]) -> str:
    block = _mapping(event.get("content_block"))
    label = " ".join(str(block[key]) for key in ("name", "id") if block.get(key))
    return f"{block.get('type') or '?'} {label}".strip()


def _block_delta(event: dict[str, Any]) -> str:
    delta = _mapping(event.get("delta"))
    kind = str(delta.get("type") or "?")
    for field in ("text", "thinking", "partial_json"):
        if isinstance(delta.get(field), str):
            return f"{kind} {json.dumps(delta[field][: SUMMARY_LENGTH * 2], ensure_ascii=False)}"
    if isinstance(delta.get("signature"), str):
        return f"{kind} ({len(delta['signature']):,} characters)"
    return f"{kind} {json.dumps(delta, ensure_ascii=False, default=str)}"


def _message_delta(event: dict[str, Any]) -> str:
    delta = _mapping(event.get("delta"))
    stop = f"stop_reason: {delta['stop_reason']}" if delta.get("stop_reason") else ""
    return " · ".join(part for part in (stop, _usage_text(_mapping(event.get("usage")))) if part)


def _error(event: dict[str, Any]) -> str:
    error = _mapping(event.get("error"))
    return f"{error.get('type') or 'error'}: {error.get('message') or ''}"


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "message_start": _message_start,
    "content_block_start": _block_start,
    "content_block_delta": _block_delta,
    "message_delta": _message_delta,
    "error": _error,
}


def _usage_text(usage: dict[str, Any]) -> str:
    labels = {
        "input_tokens": "in",
        "output_tokens": "out",
        "cache_creation_input_tokens": "cache write",
        "cache_read_input_tokens": "cache read",
    }
    return ", ".join(f"{label} {usage[key]}" for key, label in labels.items() if isinstance(usage.get(key), int))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"
