"""AI analysis of conversations: the model that analyses (Gemini, or Claude through this proxy)
and the jobs in storage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from nexus.domain.analysis.transcript import Turn

AnalysisState = Literal["pending", "processing", "completed", "failed"]


class AnalyzerAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The model's structured answer (decoded JSON, not yet checked) and what it cost."""

    data: Any
    raw: str  # the answer as sent, kept when it does not validate
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None


class AnalyzerFailed(Exception):
    """The model could not be asked or did not answer; ``retryable`` when waiting may help
    (429, 5xx, a timeout, a dropped connection)."""

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@runtime_checkable
class Analyzer(Protocol):
    name: str  # "gemini" or "claude"
    model: str

    async def analyze(self, turns: list[Turn], brief: str, *, schema: dict[str, Any]) -> AnalyzerAnswer: ...


class AnalysisJob(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    conversation_id: uuid.UUID
    branch_id: str
    state: AnalysisState
    custom_prompt: str | None = None
    attempts: int = 0
    error: str | None = None
    analysis: dict[str, Any] | None = None
    raw_answer: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    duration_ms: int | None = None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


class Requested(msgspec.Struct, frozen=True):
    job: AnalysisJob
    created: bool  # False: one was already pending, running or done


class BranchExchange(msgspec.Struct, frozen=True):
    """One stored exchange of a branch: the request body and the response message, decoded."""

    request: Any
    response: Any


class FoundBranch(msgspec.Struct, frozen=True):
    domain: str | None
    exchanges: int


@runtime_checkable
class AnalysisStore(Protocol):
    """Every method raises ``QueriesUnavailable`` when the database cannot be reached."""

    async def find_branch(self, conversation_id: uuid.UUID, branch_id: str) -> FoundBranch | None:
        """None when the conversation has no such branch."""
        ...

    async def request(
        self, conversation_id: uuid.UUID, branch_id: str, custom_prompt: str | None, *, regenerate: bool
    ) -> Requested:
        """A pending job, unless one exists (then it, unchanged, unless ``regenerate`` and it
        is not running: then reset to pending with the new prompt)."""
        ...

    async def get(self, conversation_id: uuid.UUID, branch_id: str) -> AnalysisJob | None: ...

    async def claim(self, *, max_attempts: int) -> AnalysisJob | None:
        """The oldest pending job due now, moved to processing with one attempt more; None when
        there is none. Two workers never get the same job (``FOR UPDATE SKIP LOCKED``)."""
        ...

    async def branch_exchanges(self, conversation_id: uuid.UUID, branch_id: str) -> list[BranchExchange]: ...

    # The methods below settle a claimed job, and do nothing if the claim is no longer this
    # worker's (the watchdog returned the job and another worker claimed it).

    async def touch(self, job: AnalysisJob) -> None:
        """The worker is alive and still on it: the watchdog leaves it alone."""
        ...

    async def complete(
        self, job: AnalysisJob, answer: AnalyzerAnswer, analysis: dict[str, Any], *, duration_ms: int
    ) -> None: ...

    async def retry_later(self, job: AnalysisJob, error: str, *, delay_s: float) -> None:
        """Back to pending, not to be claimed for ``delay_s`` (the claim counted the attempt)."""
        ...

    async def release(self, job: AnalysisJob) -> None:
        """Back to pending at once, the attempt not counted: this worker is stopping."""
        ...

    async def fail(
        self, job: AnalysisJob, error: str, *, raw_answer: str | None = None, model: str | None = None
    ) -> None: ...

    async def return_stuck(self, *, older_than_s: float, max_attempts: int) -> int:
        """Jobs processing for longer than that (a worker died) back to pending, or failed when
        out of attempts; how many."""
        ...
