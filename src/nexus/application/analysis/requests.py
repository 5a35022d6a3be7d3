"""Requesting an analysis, for the API and the dashboard's panel alike: the branch must exist,
a done or running job is answered as it is (unless redone), and each domain's new jobs are
limited per minute."""

from __future__ import annotations

import uuid

from nexus.application.analysis.creation_limit import CreationLimit
from nexus.application.analysis.worker import AnalysisWorker
from nexus.application.ports.analysis import AnalysisJob, AnalysisStore


class UnknownBranch(LookupError):
    pass


class TooManyAnalyses(Exception):
    def __init__(self, domain: str | None, wait_s: float) -> None:
        super().__init__(f"Too many analyses requested for {domain or 'this domain'}")
        self.wait_s = wait_s


class Analyses:
    def __init__(self, *, store: AnalysisStore, limit: CreationLimit, worker: AnalysisWorker | None) -> None:
        self.store = store
        self._limit = limit
        self._worker = worker

    async def request(
        self, conversation_id: uuid.UUID, branch_id: str, custom_prompt: str | None, *, regenerate: bool
    ) -> tuple[AnalysisJob, bool]:
        """The job and whether it was (re)queued."""
        branch = await self.store.find_branch(conversation_id, branch_id)
        if branch is None:
            raise UnknownBranch(f"Conversation {conversation_id} has no branch {branch_id!r}")
        existing = await self.store.get(conversation_id, branch_id)
        if existing is not None and not (regenerate and existing.state != "processing"):
            return existing, False
        wait_s = self._limit.admit(branch.domain or "")
        if wait_s is not None:
            raise TooManyAnalyses(branch.domain, wait_s)
        requested = await self.store.request(conversation_id, branch_id, custom_prompt or None, regenerate=regenerate)
        if requested.created and self._worker is not None:
            self._worker.nudge()
        return requested.job, requested.created
