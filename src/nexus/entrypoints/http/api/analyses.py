"""Management API routes: AI analyses of a conversation's branch, requested, read, redone.

The field names are camelCase, as the original's ``/api/analyses``, so its clients keep working.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_429_TOO_MANY_REQUESTS
from litestar.types import ControllerRouterHandler

from nexus.application.analysis.requests import Analyses, TooManyAnalyses, UnknownBranch
from nexus.application.ports.analysis import AnalysisJob, AnalysisState
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.domain.analysis.instructions import MAX_CUSTOM_PROMPT
from nexus.entrypoints.http.api.params import (
    API_SECURITY,
    UUID_FORMAT,
    api_errors,
    clear_validation_errors,
    parse_path_id,
    storage_unavailable,
)
from nexus.entrypoints.http.errors import http_exception_handler

BranchId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class AnalysisRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    # A UUID, so the schema says so: as a str, every string was documented valid and most were 400s.
    conversation_id: uuid.UUID
    branch_id: BranchId = "main"
    custom_prompt: Annotated[str, msgspec.Meta(max_length=MAX_CUSTOM_PROMPT)] | None = None


class RegenerateRequest(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    custom_prompt: Annotated[str, msgspec.Meta(max_length=MAX_CUSTOM_PROMPT)] | None = None


class TokenUsage(msgspec.Struct, frozen=True, rename="camel"):
    input: int | None
    output: int | None


class AnalysisView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    analysis_id: int
    conversation_id: uuid.UUID
    branch_id: str
    status: AnalysisState
    message: str
    analysis: dict[str, Any] | None  # the analysis once completed, in the schema's camelCase fields
    error: str | None
    raw_answer: str | None  # the model's answer when it did not fit the schema
    custom_prompt: str | None
    model: str | None
    token_usage: TokenUsage
    attempts: int
    duration_ms: int | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


# The bodies refuse unknown fields (forbid_unknown_fields), which Litestar's schema leaves out.
_CLOSED_BODY = Body(schema_extra={"additionalProperties": False})
# 201 when the job is queued; 200 with the job as it is when one is queued, running or done.
_UNCHANGED = {200: ResponseSpec(AnalysisView, description="The job already there, unchanged", generate_examples=False)}

_MESSAGES = {
    "pending": "The analysis is queued",
    "processing": "The analysis is running",
    "completed": "The analysis is done",
    "failed": "The analysis failed",
}


def analysis_view(job: AnalysisJob, message: str | None = None) -> AnalysisView:
    return AnalysisView(
        analysis_id=job.id,
        conversation_id=job.conversation_id,
        branch_id=job.branch_id,
        status=job.state,
        message=message or _MESSAGES[job.state],
        analysis=job.analysis,
        error=job.error,
        raw_answer=job.raw_answer,
        custom_prompt=job.custom_prompt,
        model=job.model,
        token_usage=TokenUsage(job.input_tokens, job.output_tokens),
        attempts=job.attempts,
        duration_ms=job.duration_ms,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
    )


def too_many(request: Request[Any, Any, Any], exc: TooManyAnalyses) -> Response[bytes]:
    wait = math.ceil(exc.wait_s)
    refusal = ClientException(f"{exc}: try again in {wait} s", status_code=HTTP_429_TOO_MANY_REQUESTS)
    response = http_exception_handler(request, refusal)
    response.headers["retry-after"] = str(wait)
    return response


def unknown_branch(request: Request[Any, Any, Any], exc: UnknownBranch) -> Response[bytes]:
    return http_exception_handler(request, NotFoundException(str(exc)))


class AnalysesController(Controller):
    path = "/analyses"
    tags = ["analyses"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {  # noqa: RUF012 -- as above
        QueriesUnavailable: storage_unavailable,
        ValidationException: clear_validation_errors({}),
        TooManyAnalyses: too_many,
        UnknownBranch: unknown_branch,
    }

    @post("/", operation_id="RequestAnalysis", summary="Analyse a conversation's branch",
          responses={**api_errors(400, 404, 429, 503), **_UNCHANGED})  # fmt: skip
    async def request_analysis(
        self, analyses: NamedDependency[Analyses], data: Annotated[AnalysisRequest, _CLOSED_BODY]
    ) -> Response[AnalysisView]:
        """201 with the queued job; 200 with the existing one when the branch is already
        queued, running or done (``regenerate`` redoes it). 429 past the domain's limit."""
        job, created = await analyses.request(
            data.conversation_id, data.branch_id, data.custom_prompt, regenerate=False
        )
        status = HTTP_201_CREATED if created else HTTP_200_OK
        message = None if created else f"Already {'done' if job.state == 'completed' else job.state}"
        return Response(analysis_view(job, message), status_code=status)

    @get("/{conversation_id:str}/{branch_id:str}", operation_id="GetAnalysis", summary="One branch's analysis",
         responses=api_errors(400, 404, 503))  # fmt: skip
    async def get_analysis(
        self,
        analyses: NamedDependency[Analyses],
        conversation_id: Annotated[
            str, PathParameter(description="The conversation id (a UUID)", schema_extra=UUID_FORMAT)
        ],
        branch_id: Annotated[str, PathParameter(description="The branch, e.g. main or subtask_1")],
    ) -> AnalysisView:
        parsed = parse_path_id(conversation_id, "conversation id", "the conversation's id")
        job = await analyses.store.get(parsed, branch_id)
        if job is None:
            raise NotFoundException(f"No analysis of branch {branch_id!r} of conversation {parsed}: POST /api/analyses")
        return analysis_view(job)

    @post(
        "/{conversation_id:str}/{branch_id:str}/regenerate",
        operation_id="RegenerateAnalysis",
        summary="Analyse a branch again, optionally with your own prompt",
        responses={**api_errors(400, 404, 429, 503), **_UNCHANGED},
    )
    async def regenerate(
        self,
        analyses: NamedDependency[Analyses],
        conversation_id: Annotated[
            str, PathParameter(description="The conversation id (a UUID)", schema_extra=UUID_FORMAT)
        ],
        branch_id: Annotated[str, PathParameter(description="The branch")],
        data: Annotated[RegenerateRequest | None, _CLOSED_BODY] = None,
    ) -> Response[AnalysisView]:
        """201 with the job queued again; 200 with it unchanged while it is running."""
        parsed = parse_path_id(conversation_id, "conversation id", "the conversation's id")
        prompt = data.custom_prompt if data else None
        job, created = await analyses.request(parsed, branch_id, prompt, regenerate=True)
        return Response(analysis_view(job, None if created else "Already running"), status_code=201 if created else 200)


ANALYSIS_HANDLERS: list[ControllerRouterHandler] = [AnalysesController]
