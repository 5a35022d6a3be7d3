"""The webhook child: ``python -m nexus.adapters.webhook_process.child``. Reads frames from
stdin, POSTs each (``http1.Http1Poster``, 5 s timeout, one attempt, a few at a time), reports
counts on stdout, and exits at EOF once what it read is delivered (or after a last 5 s).

It runs at a lower CPU priority: on a busy machine the proxy's own work comes first, and the
pipe's buffer (then drops, counted) absorbs what the child cannot send meanwhile. Its POSTs
are its CPU, so they are made as cheaply as measured (ADR 23): aiohttp cost 311 µs a POST
(asyncio) and 141-161 µs (uvloop), httpx over aiohttp 570 µs, httpx alone 1,080 µs.

The pipe: on stdin the URL as the first frame (never on the command line, where ``ps`` shows
it), then one JSON body per frame, EOF to finish; on stdout ``C <sent> <failed>`` lines (at
most every ``REPORT_S`` while the counts change, and at the end) and ``F <reason>`` for a
failure worth logging. A line per delivery cost the proxy a wake-up and a read per request,
20 µs of its CPU a request at c=1 (measured: 312 against 292 µs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import uvloop

from nexus.adapters.pipe_frames import MAX_FRAME, read_frame
from nexus.adapters.slack.webhook import TIMEOUT_S
from nexus.adapters.webhook_process.http1 import Http1Poster

CONCURRENCY = 8
FINISH_S = 5.0
NICENESS = 10
REPORT_S = 0.2


class _Reporter:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self._said = (0, 0)
        self._due: asyncio.TimerHandle | None = None

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def counted(self) -> None:
        """A delivery ended: its count goes out with the others of the next ``REPORT_S``."""
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(REPORT_S, self.counts)

    def counts(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if (self.sent, self.failed) != self._said:
            self._said = (self.sent, self.failed)
            self.write(f"C {self.sent} {self.failed}")


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await read_frame(reader)
    if first is None:
        return
    report = _Reporter()
    poster = Http1Poster(first.decode(), timeout_s=TIMEOUT_S)
    slots = asyncio.Semaphore(CONCURRENCY)
    running: set[asyncio.Task[None]] = set()

    async def deliver(body: bytes) -> None:
        try:
            if (failure := await poster.post(body)) is None:
                report.sent += 1
            else:
                report.failed += 1
                if report.failed == 1 or report.failed % 100 == 0:
                    report.write(f"F {failure}")
        finally:
            slots.release()
            running.discard(asyncio.current_task())
            report.counted()

    try:
        while (body := await read_frame(reader)) is not None:
            await slots.acquire()
            task = asyncio.create_task(deliver(body))
            running.add(task)  # removed by the delivery itself, when it ends
        if running:
            await asyncio.wait(running, timeout=FINISH_S)
    finally:
        report.counts()
        await poster.close()


if __name__ == "__main__":
    with contextlib.suppress(OSError):  # a container may forbid it: sending still works
        os.nice(NICENESS)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())
