"""The webhook child: ``python -m nexus.adapters.webhook_process.child``. Reads frames from
stdin, POSTs each (aiohttp, 5 s timeout, one attempt, a few at a time), reports counts on
stdout, and exits at EOF once what it read is delivered (or after a last 5 s).

It runs at a lower CPU priority: on a busy machine the proxy's own work comes first, and the
pipe's buffer (then drops, counted) absorbs what the child cannot send meanwhile. aiohttp is
used without httpx on top: measured per POST on loopback, 311 µs of CPU against 570 µs for
httpx over aiohttp and 1,080 µs for httpx alone.

The pipe: on stdin the URL as the first frame (never on the command line, where ``ps`` shows
it), then one JSON body per frame, EOF to finish; on stdout ``C <sent> <failed>`` lines after
deliveries and ``F <reason>`` for a failure worth logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import aiohttp

from nexus.adapters.pipe_frames import MAX_FRAME, read_frame
from nexus.adapters.slack.webhook import TIMEOUT_S

CONCURRENCY = 8
FINISH_S = 5.0
NICENESS = 10
_JSON = {"content-type": "application/json"}


class _Reporter:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def counts(self) -> None:
        self.write(f"C {self.sent} {self.failed}")


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await read_frame(reader)
    if first is None:
        return
    url = first.decode()
    report = _Reporter()
    session = aiohttp.ClientSession(
        trust_env=False, cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
    )
    slots = asyncio.Semaphore(CONCURRENCY)
    running: set[asyncio.Task[None]] = set()

    async def deliver(body: bytes) -> None:
        try:
            if (failure := await _post(session, url, body)) is None:
                report.sent += 1
            else:
                report.failed += 1
                if report.failed == 1 or report.failed % 100 == 0:
                    report.write(f"F {failure}")
        finally:
            slots.release()
            running.discard(asyncio.current_task())
            if not running:
                report.counts()  # idle again: a moment to say where things stand

    reported = 0
    try:
        while (body := await read_frame(reader)) is not None:
            await slots.acquire()
            task = asyncio.create_task(deliver(body))
            running.add(task)  # removed by the delivery itself, when it ends
            if (done := report.sent + report.failed) >= reported + 100:
                reported = done
                report.counts()  # under steady load the idle moment may never come
        if running:
            await asyncio.wait(running, timeout=FINISH_S)
    finally:
        report.counts()
        with contextlib.suppress(Exception):
            await session.close()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> str | None:
    """None once delivered, else why not (never the URL: its path is the webhook's secret)."""
    try:
        async with session.post(url, data=body, headers=_JSON, allow_redirects=False) as response:
            if response.status < 300:
                await response.read()
                return None
            said = (await response.text(errors="replace"))[:100]
            return f"the webhook answered {response.status} {said!r}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"the webhook cannot be reached ({type(exc).__name__})"


if __name__ == "__main__":
    with contextlib.suppress(OSError):  # a container may forbid it: sending still works
        os.nice(NICENESS)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
