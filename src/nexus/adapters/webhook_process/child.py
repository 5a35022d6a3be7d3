"""The webhook child: ``python -m nexus.adapters.webhook_process.child``. Reads frames from
stdin, POSTs each (httpx over aiohttp, 5 s timeout, one attempt, a few at a time), reports
counts on stdout, and exits at EOF once what it read is delivered (or after a last 5 s)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from nexus.adapters.slack.webhook import TIMEOUT_S, HttpxWebhookSender
from nexus.adapters.webhook_process.frames import HEADER, MAX_FRAME
from nexus.application.ports.notifier import DeliveryFailed

CONCURRENCY = 8
FINISH_S = 5.0


class _Reporter:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def counts(self) -> None:
        self.write(f"C {self.sent} {self.failed}")


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            return None
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await _read_frame(reader)
    if first is None:
        return
    url = first.decode()
    report = _Reporter()
    session = aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
    client = httpx.AsyncClient(transport=AiohttpTransport(client=session), timeout=TIMEOUT_S, trust_env=False)
    sender = HttpxWebhookSender(client)
    slots = asyncio.Semaphore(CONCURRENCY)
    running: set[asyncio.Task[None]] = set()

    async def deliver(body: bytes) -> None:
        try:
            await sender.post_bytes(url, body)
        except DeliveryFailed as exc:
            report.failed += 1
            if report.failed == 1 or report.failed % 100 == 0:
                report.write(f"F {exc}")
        else:
            report.sent += 1
        finally:
            slots.release()
            running.discard(asyncio.current_task())
            if not running:
                report.counts()  # idle again: a moment to say where things stand

    reported = 0
    try:
        while (body := await _read_frame(reader)) is not None:
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
            await client.aclose()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
