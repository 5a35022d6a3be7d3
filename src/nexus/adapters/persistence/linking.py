"""The linker in PostgreSQL: one process at a time, woken by the recorder (ADR 8).

Every proxy process runs a linker task; a transaction-scoped advisory lock lets one of them
work at a time, so links are decided in one place, in order, with any number of workers. The
recorder's ``NOTIFY`` wakes the linkers as soon as rows are committed; a short poll covers a
missed notification (a listener reconnecting). When a unit of work links rows, the summaries of
the conversations it touched are refreshed in the same transaction and ``nexus_links`` is
notified (for live views).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.conversation_summaries import refresh_conversations
from nexus.adapters.persistence.db_errors import describe, is_unavailable
from nexus.adapters.persistence.exchange_store import EXCHANGES_CHANNEL
from nexus.adapters.persistence.link_work import SqlLinkWork
from nexus.application.linking.run import LinkCounts, link_pending
from nexus.application.ports.conversation_history import LinkingUnavailable
from nexus.domain.conversation.threading import CLAUDE_CODE_AGENTS, ThreadRule

log = logging.getLogger(__name__)
LINKS_CHANNEL = "nexus_links"
LINK_LOCK_KEY = 0x6E657875_736C6E6B  # "nexuslnk": one linker at a time across processes
POLL_INTERVAL_S = 1.0
_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0)


@asynccontextmanager
async def sql_link_work(engine: AsyncEngine, *, wait: bool = False) -> AsyncIterator[SqlLinkWork | None]:
    """One transaction of linking work; None when another process holds the lock (unless
    ``wait``, which waits for it)."""
    async with engine.begin() as connection:
        if wait:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY})
        elif not await connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY}):
            yield None
            return
        await connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        work = SqlLinkWork(connection)
        yield work
        if work.touched:
            await refresh_conversations(connection, work.touched)
        if work.linked:
            await connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": LINKS_CHANNEL})


class Linker:
    """The background linking task of one process."""

    def __init__(self, engine: AsyncEngine, *, poll_interval_s: float = POLL_INTERVAL_S, batch_size: int = 200):
        self._engine = engine
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self.counts = LinkCounts()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async with self._listening() as still_listening:
                    while still_listening():
                        self.counts.add(await self.link_now())
                        failures = 0
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
                        self._wake.clear()
            except LinkingUnavailable as exc:
                if failures == 0:
                    log.warning("Conversation linking paused: the database is unavailable (%s)", exc)
                failures += 1
            except Exception as exc:
                if failures == 0:
                    if is_unavailable(exc):
                        log.warning("Conversation linking paused: the database is unavailable (%s)", describe(exc))
                    else:
                        log.exception("Conversation linking failed (%s); retrying", describe(exc))
                failures += 1
                await asyncio.sleep(_RETRY_DELAYS_S[min(failures, len(_RETRY_DELAYS_S)) - 1])

    async def link_now(self) -> LinkCounts:
        return await link_pending(lambda: sql_link_work(self._engine), batch_size=self._batch_size)

    @asynccontextmanager
    async def _listening(self) -> AsyncIterator[Callable[[], bool]]:
        """LISTEN on a connection of its own while the body runs; yields a check that the
        connection is still up (a dead listener hears nothing, so it is replaced)."""
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            await driver.add_listener(EXCHANGES_CHANNEL, self._notified)  # type: ignore[union-attr]
            try:
                yield lambda: not driver.is_closed()  # type: ignore[union-attr]
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(EXCHANGES_CHANNEL, self._notified)  # type: ignore[union-attr]

    def _notified(self, *_: object) -> None:
        self._wake.set()


async def linker_lifetime(
    engine: AsyncEngine | None, recording: object, *, enabled: bool = True
) -> AsyncIterator[Linker | None]:
    """A running linker while the app runs (None when storage is off, or when it runs
    elsewhere: ``enabled`` false).

    ``recording`` is taken so the container starts the recorder, which migrates the schema, first.
    """
    if engine is None or recording is None or not enabled:
        yield None
        return
    linker = Linker(engine)
    task = asyncio.create_task(linker.run(), name="conversation-linker")
    try:
        yield linker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def rebuild_conversations(
    engine: AsyncEngine, *, since: datetime | None, thread_rule: ThreadRule = "any_client"
) -> LinkCounts:
    """Re-link every threaded request since ``since`` (all when None), in order; facts from
    older rules are recomputed. Idempotent: on correctly linked data nothing changes.

    Which requests are threaded is ``is_threaded`` in SQL, over the columns it reads."""
    async with engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY})
        await connection.execute(
            text(
                "UPDATE exchanges SET link_pending = true WHERE (request_type = 'inference'"
                " OR (:any_client AND request_type = 'query_evaluation' AND session_id IS NULL"
                " AND NOT starts_with(lower(coalesce(user_agent, '')), :cli)"
                " AND NOT starts_with(lower(coalesce(user_agent, '')), :code)))"
                " AND (CAST(:since AS timestamptz) IS NULL OR ts >= :since)"
            ),
            {
                "since": since,
                "any_client": thread_rule == "any_client",
                "cli": CLAUDE_CODE_AGENTS[0],
                "code": CLAUDE_CODE_AGENTS[1],
            },
        )
    return await link_pending(lambda: sql_link_work(engine, wait=True))
