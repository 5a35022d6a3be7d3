"""The analysis worker: claims pending jobs (a few at a time), reads the branch, asks the
analyzer, checks the answer against the schema, and stores the outcome.

- A transient failure (429, 5xx, timeout, dropped connection) is retried with backoff until
  the job is out of attempts; anything else fails the job with the reason.
- An answer that does not fit the schema is asked again once with a reminder; a second misfit
  fails the job, the raw answer kept beside the error.
- A worker that dies leaves its jobs processing: every worker's watchdog returns jobs not
  touched for longer than the job timeout (a live worker touches its jobs every third of it).
  One that stops cleanly hands its jobs back at once. A job is settled only by the claim that
  holds it, so a worker that comes back from a long pause cannot overwrite another's result.
- The database away: the round is skipped and tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from nexus.application.ports.analysis import AnalysisJob, AnalysisStore, Analyzer, AnalyzerAnswer, AnalyzerFailed
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.system import Clock
from nexus.domain.analysis.instructions import REMINDER, brief
from nexus.domain.analysis.jobs import retry_delay_s
from nexus.domain.analysis.result import (
    ConversationAnalysis,
    InvalidAnalysis,
    analysis_dict,
    analysis_schema,
    parse_analysis,
)
from nexus.domain.analysis.transcript import Turn, exchange_turns, fit

log = logging.getLogger(__name__)


class AnalysisWorker:
    def __init__(
        self,
        *,
        store: AnalysisStore,
        analyzer: Analyzer,
        clock: Clock,
        max_concurrent: int,
        poll_s: float,
        max_attempts: int,
        job_timeout_s: float,
        max_prompt_tokens: int,
        head_tail: tuple[int, int] = (5, 20),
    ) -> None:
        self._store = store
        self._analyzer = analyzer
        self._clock = clock
        self._max_concurrent = max_concurrent
        self._poll_s = poll_s
        self._max_attempts = max_attempts
        self._job_timeout_s = job_timeout_s
        self._max_prompt_tokens = max_prompt_tokens
        self._head, self._tail = head_tail
        self._schema = analysis_schema()
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._database_away = False
        self.completed = 0
        self.failed = 0

    def nudge(self) -> None:
        """A job was just requested: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled; then the jobs in hand are handed back. The first round comes one poll
        after the start (or a nudge), once the proxy serves (the Claude analyzer calls it)."""
        log.info(
            "Analysis worker started: %s (%s), %d at a time",
            self._analyzer.name,
            self._analyzer.model,
            self._max_concurrent,
        )
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
                self._wake.clear()
                await self._round()
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _round(self) -> None:
        try:
            returned = await self._store.return_stuck(older_than_s=self._job_timeout_s, max_attempts=self._max_attempts)
            if returned:
                log.warning(
                    "Analysis watchdog: %d job(s) stuck for over %.0f s returned", returned, self._job_timeout_s
                )
            while len(self._running) < self._max_concurrent:
                job = await self._store.claim(max_attempts=self._max_attempts)
                if job is None:
                    break
                task = asyncio.create_task(self._process(job), name=f"analysis-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._done)
        except QueriesUnavailable as exc:
            if not self._database_away:  # once per outage, not every poll
                log.warning("Analysis worker cannot use the database: %s", exc)
            self._database_away = True
        else:
            if self._database_away:
                log.info("Analysis worker: the database answers again")
            self._database_away = False

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            self._wake.set()  # a free slot: claim the next job now

    async def _process(self, job: AnalysisJob) -> None:
        started = self._clock.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            await self._analyse(job, started)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(job))
            raise
        except QueriesUnavailable as exc:
            log.warning("Analysis %d: the database went away (%s); the watchdog will return it", job.id, exc)
        except Exception:
            log.exception("Analysis %d failed unexpectedly", job.id)
            await self._settle_failure(job, "The analysis failed unexpectedly (see the proxy's log)")
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, job: AnalysisJob) -> None:
        """While the job runs, so the watchdog returns only the jobs of dead workers."""
        while True:
            await asyncio.sleep(self._job_timeout_s / 3)
            with contextlib.suppress(QueriesUnavailable):
                await self._store.touch(job)

    async def _analyse(self, job: AnalysisJob, started: float) -> None:
        exchanges = await self._store.branch_exchanges(job.conversation_id, job.branch_id)
        turns = [turn for exchange in exchanges for turn in exchange_turns(exchange.request, exchange.response)]
        if not turns:
            await self._fail(job, "The branch has no stored text to analyse (are bodies stored? STORE_BODIES)")
            return
        turns = fit(turns, max_tokens=self._max_prompt_tokens, head=self._head, tail=self._tail)
        try:
            answer, analysis, problem = await self._ask(turns, brief(job.custom_prompt))
        except AnalyzerFailed as exc:
            if exc.retryable and job.attempts < self._max_attempts:
                delay = exc.retry_after_s or retry_delay_s(job.attempts, random.random())  # noqa: S311 -- jitter, not a secret
                log.warning(
                    "Analysis %d: %s; again in %.1f s (attempt %d of %d)",
                    job.id,
                    exc,
                    delay,
                    job.attempts,
                    self._max_attempts,
                )
                await self._store.retry_later(job, str(exc), delay_s=delay)
            else:
                await self._fail(job, str(exc))
            return
        if analysis is None:
            await self._fail(job, f"The model's answer does not fit the analysis schema: {problem}", answer)
            return
        duration_ms = round((self._clock.monotonic() - started) * 1000)
        await self._store.complete(job, answer, analysis_dict(analysis), duration_ms=duration_ms)
        self.completed += 1
        log.info("Analysis %d done by %s in %d ms", job.id, answer.model, duration_ms)

    async def _ask(self, turns: list[Turn], text: str) -> tuple[AnalyzerAnswer, ConversationAnalysis | None, str]:
        answer = await self._analyzer.analyze(turns, text, schema=self._schema)
        try:
            return answer, parse_analysis(answer.data), ""
        except InvalidAnalysis as first:
            again = await self._analyzer.analyze(
                turns, f"{text}\n\n{REMINDER.format(problem=first)}", schema=self._schema
            )
            try:
                return again, parse_analysis(again.data), ""
            except InvalidAnalysis as second:
                return again, None, str(second)

    async def _fail(self, job: AnalysisJob, error: str, answer: AnalyzerAnswer | None = None) -> None:
        self.failed += 1
        log.warning("Analysis %d failed: %s", job.id, error)
        await self._store.fail(
            job, error, raw_answer=answer.raw if answer else None, model=answer.model if answer else None
        )

    async def _settle_failure(self, job: AnalysisJob, error: str) -> None:
        with contextlib.suppress(QueriesUnavailable):  # the watchdog returns it
            await self._fail(job, error)

    async def _release(self, job: AnalysisJob) -> None:
        with contextlib.suppress(QueriesUnavailable):  # the watchdog returns it
            await self._store.release(job)
