"""An observer that only enqueues, and a task that does the work: traffic never waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Generic, Protocol, TypeVar

from nexus.application.exchange import Exchange

log = logging.getLogger(__name__)
Item = TypeVar("Item")


DRAIN_S = 5.0


class QueuedWorker(Generic[Item]):
    """A bounded queue (a full one drops and counts) drained by one task calling ``handle``.

    At shutdown what is queued still goes out, for at most ``drain_s`` seconds (after the
    proxy has stopped taking requests): a restart does not silently lose the last messages.
    """

    name = "worker"
    drain_s = DRAIN_S

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def _enqueue(self, item: Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            if not self._task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), self.drain_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self.handle(item)
            except Exception:
                log.exception("%s failed on %s", self.name, getattr(item, "request_id", type(item).__name__))
            finally:
                self._queue.task_done()

    async def handle(self, item: Item) -> None:
        raise NotImplementedError


class _Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


Worker = TypeVar("Worker", bound=_Startable)


async def running(worker: Worker | None) -> AsyncIterator[Worker | None]:
    """A container resource: the worker started for the app's lifetime (None: switched off)."""
    if worker is None:
        yield None
        return
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


class ExchangeWorker(QueuedWorker[Exchange]):
    def observe(self, exchange: Exchange) -> None:
        self._enqueue(exchange)


class _Runnable(Protocol):
    async def run(self) -> None: ...


Runner = TypeVar("Runner", bound=_Runnable)


async def run_in_background(runner: Runner | None, name: str) -> AsyncIterator[Runner | None]:
    """A container resource: ``runner.run()`` as a task for the app's lifetime, cancelled (and
    awaited) at shutdown; None passes through (switched off)."""
    if runner is None:
        yield None
        return
    task = asyncio.create_task(runner.run(), name=name)
    try:
        yield runner
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
