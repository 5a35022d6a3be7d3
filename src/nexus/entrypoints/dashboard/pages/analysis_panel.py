"""The AI analysis panel of a conversation: one branch's analysis (generate, its state while it
runs, the result, redo with a custom prompt). htmx swaps the panel alone and polls it while the
job runs; without JavaScript the forms post and the page reloads."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from nexus.application.analysis.requests import Analyses, TooManyAnalyses, UnknownBranch
from nexus.application.ports.analysis import AnalysisJob
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.domain.analysis.instructions import MAX_CUSTOM_PROMPT
from nexus.entrypoints.dashboard.params import MAX_PARAM, identifier, text, wants_fragment

POLL_S = 2


class AnalysisForm(msgspec.Struct, kw_only=True):
    branch: str = "main"
    custom_prompt: str = ""
    regenerate: str = ""


class Panel(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    branch: str
    job: AnalysisJob | None = None
    problem: str | None = None
    poll_s: int = POLL_S


async def panel(analyses: Analyses, conversation_id: uuid.UUID, branch: str, problem: str | None = None) -> Panel:
    """The panel's state; the database away is a problem to show, not an error page."""
    job = None
    try:
        job = await analyses.store.get(conversation_id, branch)
    except QueriesUnavailable as exc:
        problem = problem or f"Analyses cannot be read: {exc}"
    return Panel(conversation_id=str(conversation_id), branch=branch, job=job, problem=problem)


@get("/conversations/{conversation_id:str}/analysis", name="dashboard-analysis")
async def analysis_fragment(
    analyses: NamedDependency[Analyses],
    conversation_id: Annotated[str, PathParameter()],
    analysis_branch: Annotated[str | None, QueryParameter(description="The branch, main by default")] = None,
) -> Template:
    parsed = identifier(conversation_id)
    if parsed is None:
        return Template("analysis_panel.html", context={"panel": None}, status_code=400)
    chosen = text(analysis_branch, limit=MAX_PARAM) or "main"
    return Template("analysis_panel.html", context={"panel": await panel(analyses, parsed, chosen)})


@post("/conversations/{conversation_id:str}/analysis", name="dashboard-analysis-request")
async def request_analysis(
    request: Request[Any, Any, Any],
    analyses: NamedDependency[Analyses],
    conversation_id: Annotated[str, PathParameter()],
    data: Annotated[AnalysisForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    parsed = identifier(conversation_id)
    if parsed is None:
        return Template("analysis_panel.html", context={"panel": None}, status_code=400)
    branch = text(data.branch, limit=MAX_PARAM) or "main"
    prompt = data.custom_prompt.strip()[:MAX_CUSTOM_PROMPT] or None
    problem = None
    status = 200
    try:
        await analyses.request(parsed, branch, prompt, regenerate=bool(data.regenerate))
    except UnknownBranch as exc:
        problem, status = str(exc), 404
    except TooManyAnalyses as exc:
        problem, status = f"{exc}: try again in {int(exc.wait_s) + 1} s.", 429
    except QueriesUnavailable as exc:
        problem, status = f"The analysis cannot be requested: {exc}", 503
    if not wants_fragment(request):
        return Redirect(f"/dashboard/conversations/{parsed}?analysis_branch={branch}#analysis", status_code=303)
    shown = await panel(analyses, parsed, branch, problem)
    return Template("analysis_panel.html", context={"panel": shown}, status_code=status)
