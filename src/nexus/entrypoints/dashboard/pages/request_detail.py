"""One recorded request in full: its facts, the rendered conversation (``render_conversation``),
the masked headers, the bodies as pretty JSON and the stream's events parsed from the raw SSE
bytes. Every database value reaches the HTML through Jinja's autoescape or the renderer's
escaping.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import ExchangeQueries, QueriesUnavailable, RequestDetail, StoredBody
from nexus.domain.content_encoding import decoded_body
from nexus.domain.conversation.threading import ThreadRule, why_not_threaded
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import MAX_PARAM, identifier, text
from nexus.entrypoints.dashboard.render.conversation import render_conversation
from nexus.entrypoints.dashboard.render.stream_timeline import Timeline, parse_timeline

RAW_JSON_LIMIT = 200_000  # characters of pretty-printed JSON shown per body


class RawJson(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    total: int
    truncated: bool


@get("/requests/{request_id:str}", name="dashboard-request")
async def request_page(
    request: Request[Any, Any, Any],
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
        unthreaded=_why_not_threaded(detail, request.app.state.get("thread_rule", "any_client")) if detail else None,
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


def _why_not_threaded(detail: RequestDetail, rule: ThreadRule) -> str | None:
    """Said in place of a conversation when the request has none."""
    if detail.conversation_id is not None:
        return None
    return why_not_threaded(
        detail.request_type,
        path=detail.path,
        session_id=detail.session_id,
        user_agent=detail.user_agent,
        rule=rule,
        link_pending=detail.link_pending,
    )
