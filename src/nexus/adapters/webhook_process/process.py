"""The proxy's side of the webhook child (``child.py``): start it, hand it bodies, read its
counts.

Each POST costs the client library close to a millisecond of CPU (measured: httpx ~870 µs,
httpx over aiohttp ~570 µs), as much as proxying the request itself; done on the proxy's
event loop, a telemetry POST per request halved the proxy's throughput. Here a POST costs the
proxy one write of the encoded body to a pipe. The pipe's buffer is the queue: past
``buffer_bytes`` unsent, bodies are dropped and counted. The child exits when the pipe
closes, so it cannot outlive the proxy, even one killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import msgspec

from nexus.adapters.pipe_frames import Outbox, frame

log = logging.getLogger(__name__)

BUFFER_BYTES = 4 * 1024 * 1024
STOP_S = 6.0  # the child's own last 5 s, and a moment to exit
RESTART_DELAY_S = 1.0
# Bodies are handed to the child at most this often: one write and one wake-up of the child
# for all of them (pipe_frames.Outbox); a telemetry POST later by this much is no loss.
SEND_EVERY_S = 0.05


class WebhookProcess:
    """``offer`` a payload to be POSTed to ``url`` by the child; never waits."""

    def __init__(self, url: str, *, name: str, buffer_bytes: int = BUFFER_BYTES) -> None:
        self._url = url
        self._name = name
        self._buffer_bytes = buffer_bytes
        self._child: asyncio.subprocess.Process | None = None
        self._outbox = Outbox(delay_s=SEND_EVERY_S)  # bodies for the child's stdin, a few at a time
        self._reports: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.offered = 0

    async def start(self) -> None:
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nexus.adapters.webhook_process.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._child.stdin is not None
        self._child.stdin.write(frame(self._url.encode()))
        self._reports = asyncio.create_task(self._read_reports(), name=f"{self._name}-reports")

    def offer(self, payload: dict[str, Any]) -> None:
        stdin = self._child.stdin if self._child is not None else None
        unsent = stdin.transport.get_write_buffer_size() + self._outbox.size if stdin is not None else 0
        if stdin is None or stdin.is_closing() or unsent > self._buffer_bytes:
            self.dropped += 1
            return
        self._outbox.send(stdin, frame(msgspec.json.encode(payload)))
        self.offered += 1

    @property
    def queued(self) -> int:
        """Bodies handed over and not yet reported delivered or failed (the pipe and the child)."""
        return max(self.offered - self.sent - self.failed, 0)

    async def stop(self) -> None:
        child = self._child
        if child is None:
            return
        self._child = None
        if child.stdin is not None:
            self._outbox.flush()
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), STOP_S)
        except TimeoutError:
            child.kill()
            await child.wait()
        if self._reports is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reports, 1.0)  # cancelled if it is still waiting

    async def _read_reports(self) -> None:
        child = self._child
        assert child is not None
        assert child.stdout is not None
        base_sent, base_failed = self.sent, self.failed  # a restarted child counts from 0
        while line := await child.stdout.readline():
            kind, _, rest = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
            if kind == "C":
                sent, _, failed = rest.partition(" ")
                if sent.isdigit() and failed.isdigit():
                    self.sent, self.failed = base_sent + int(sent), base_failed + int(failed)
            elif kind == "F":
                log.warning("%s: %s (%d failures so far)", self._name, rest, self.failed + 1)
        if self._child is child:  # not stopping: the child died
            code = await child.wait()
            log.warning("%s: the sending process exited (%s); starting another", self._name, code)
            self.dropped += self.queued
            self.offered = self.sent + self.failed
            await asyncio.sleep(RESTART_DELAY_S)  # a child failing at start must not spin
            if self._child is child:
                await self.start()
