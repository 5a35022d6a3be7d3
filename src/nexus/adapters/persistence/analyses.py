"""Analysis jobs in ``conversation_analyses`` and the branch text they read from ``exchanges``.

A claim is one ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``:
a worker skips the rows another is claiming, so no job is processed twice, whichever worker or
process asks. Times come from the database's clock, so workers on several machines agree.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import Row, case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nexus.adapters.persistence.exchange_queries import run_read
from nexus.adapters.persistence.stored_bodies import compose_body
from nexus.adapters.persistence.tables import conversation_analyses, exchanges
from nexus.application.ports.analysis import AnalysisJob, AnalyzerAnswer, BranchExchange, FoundBranch, Requested
from nexus.domain import json_text

_t = conversation_analyses.c
MAX_BRANCH_EXCHANGES = 2000  # the oldest that many: a longer branch is cut by the prompt budget anyway


class SqlAlchemyAnalysisStore:
    def __init__(self, engine: AsyncEngine | None) -> None:
        self._engine = engine

    async def find_branch(self, conversation_id: uuid.UUID, branch_id: str) -> FoundBranch | None:
        e = exchanges.c
        statement = select(func.min(e.domain), func.count()).where(
            e.conversation_id == conversation_id, e.branch_id == branch_id
        )

        async def work(connection: AsyncConnection) -> FoundBranch | None:
            domain, count = (await connection.execute(statement)).one()
            return FoundBranch(domain=domain, exchanges=count) if count else None

        return await run_read(self._engine, work)

    async def request(
        self, conversation_id: uuid.UUID, branch_id: str, custom_prompt: str | None, *, regenerate: bool
    ) -> Requested:
        fresh = {
            "state": "pending",
            "custom_prompt": custom_prompt,
            "attempts": 0,
            "error": None,
            "analysis": None,
            "raw_answer": None,
            "model": None,
            "input_tokens": None,
            "output_tokens": None,
            "duration_ms": None,
            "not_before": func.now(),
            "updated_at": func.now(),
            "completed_at": None,
        }
        created = (
            insert(conversation_analyses)
            .values(conversation_id=conversation_id, branch_id=branch_id, created_at=func.now(), **fresh)
            .on_conflict_do_nothing(index_elements=[_t.conversation_id, _t.branch_id])
            .returning(*conversation_analyses.c)
        )
        reset = (
            update(conversation_analyses)
            .where(_t.conversation_id == conversation_id, _t.branch_id == branch_id, _t.state != "processing")
            .values(**fresh)
            .returning(*conversation_analyses.c)
        )

        async def work(connection: AsyncConnection) -> Requested:
            row = (await connection.execute(created)).first()
            if row is None and regenerate:
                row = (await connection.execute(reset)).first()
            await connection.commit()
            if row is not None:
                return Requested(_job(row), created=True)
            existing = (await connection.execute(_by_branch(conversation_id, branch_id))).one()
            return Requested(_job(existing), created=False)

        return await run_read(self._engine, work)

    async def get(self, conversation_id: uuid.UUID, branch_id: str) -> AnalysisJob | None:
        async def work(connection: AsyncConnection) -> AnalysisJob | None:
            row = (await connection.execute(_by_branch(conversation_id, branch_id))).first()
            return _job(row) if row is not None else None

        return await run_read(self._engine, work)

    async def claim(self, *, max_attempts: int) -> AnalysisJob | None:
        due = (
            select(_t.id)
            .where(_t.state == "pending", _t.not_before <= func.now(), _t.attempts < max_attempts)
            .order_by(_t.created_at, _t.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(conversation_analyses)
            .where(_t.id == due)
            .values(state="processing", attempts=_t.attempts + 1, updated_at=func.now())
            .returning(*conversation_analyses.c)
        )
        return await self._one(statement)

    async def branch_exchanges(self, conversation_id: uuid.UUID, branch_id: str) -> list[BranchExchange]:
        e = exchanges.c
        statement = (
            select(e.request_body, e.response_body)
            .where(
                e.conversation_id == conversation_id,
                e.branch_id == branch_id,
                # Every threaded request, whatever its class: an SDK conversation's turns too (ADR 19).
                e.request_body.is_not(None),
            )
            .order_by(e.ts, e.id)
            .limit(MAX_BRANCH_EXCHANGES)
        )

        async def work(connection: AsyncConnection) -> list[BranchExchange]:
            found = []
            for row in await connection.execute(statement):
                try:
                    request = json_text.loads(await compose_body(connection, row.request_body))
                except msgspec.DecodeError:
                    continue
                found.append(BranchExchange(request=request, response=row.response_body))
            return found

        return await run_read(self._engine, work)

    async def touch(self, job: AnalysisJob) -> None:
        await self._set(job)

    async def complete(
        self, job: AnalysisJob, answer: AnalyzerAnswer, analysis: dict[str, Any], *, duration_ms: int
    ) -> None:
        await self._set(
            job,
            state="completed",
            analysis=analysis,
            raw_answer=None,
            error=None,
            model=answer.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            duration_ms=duration_ms,
            completed_at=func.now(),
        )

    async def retry_later(self, job: AnalysisJob, error: str, *, delay_s: float) -> None:
        await self._set(job, state="pending", error=error, not_before=func.now() + timedelta(seconds=delay_s))

    async def release(self, job: AnalysisJob) -> None:
        await self._set(job, state="pending", attempts=func.greatest(_t.attempts - 1, 0), not_before=func.now())

    async def fail(
        self, job: AnalysisJob, error: str, *, raw_answer: str | None = None, model: str | None = None
    ) -> None:
        await self._set(job, state="failed", error=error, raw_answer=raw_answer, model=model, completed_at=func.now())

    async def return_stuck(self, *, older_than_s: float, max_attempts: int) -> int:
        out_of_attempts = _t.attempts >= max_attempts
        statement = (
            update(conversation_analyses)
            .where(_t.state == "processing", _t.updated_at < func.now() - timedelta(seconds=older_than_s))
            .values(
                state=case((out_of_attempts, "failed"), else_="pending"),
                error=f"The worker processing it stopped answering for {older_than_s:.0f} s (returned by the watchdog)",
                completed_at=case((out_of_attempts, func.now()), else_=None),
                not_before=func.now(),
                updated_at=func.now(),
            )
            .returning(_t.id)
        )

        async def work(connection: AsyncConnection) -> int:
            returned = len((await connection.execute(statement)).all())
            await connection.commit()
            return returned

        return await run_read(self._engine, work)

    async def _set(self, job: AnalysisJob, **values: Any) -> None:
        """Only while the claim is still this one: processing, with the attempt count it made."""
        statement = (
            update(conversation_analyses)
            .where(_t.id == job.id, _t.state == "processing", _t.attempts == job.attempts)
            .values(updated_at=func.now(), **values)
        )

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(statement)
            await connection.commit()

        await run_read(self._engine, work)

    async def _one(self, statement: Any) -> AnalysisJob | None:
        async def work(connection: AsyncConnection) -> AnalysisJob | None:
            row = (await connection.execute(statement)).first()
            await connection.commit()
            return _job(row) if row is not None else None

        return await run_read(self._engine, work)


def _by_branch(conversation_id: uuid.UUID, branch_id: str) -> Any:
    return select(conversation_analyses).where(_t.conversation_id == conversation_id, _t.branch_id == branch_id)


def _job(row: Row[Any]) -> AnalysisJob:
    values = {str(key): value for key, value in row._mapping.items() if key != "not_before"}
    return msgspec.convert(values, AnalysisJob, from_attributes=True)
