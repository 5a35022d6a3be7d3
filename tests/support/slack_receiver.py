"""A Slack incoming-webhook look-alike on loopback: keeps each message by webhook path and
answers as scripted (``ok``, a 429 with ``retry-after``, an error, or slowly)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.loopback_app import LoopbackApp


class Answer:
    def __init__(self, status: int = 200, *, retry_after: str | None = None, delay_s: float = 0.0) -> None:
        self.status, self.retry_after, self.delay_s = status, retry_after, delay_s


class SlackReceiver(LoopbackApp):
    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.attempts: dict[str, list[float]] = {}
        self.script: dict[str, list[Answer]] = {}  # answers to give, in order, before plain "ok"

    def webhook(self, name: str = "T000/B000/global") -> str:
        return f"http://127.0.0.1:{self.port}/services/{name}"

    def received(self, name: str = "T000/B000/global") -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages.get(f"/services/{name}", []))

    def wait_for(self, count: int, name: str = "T000/B000/global", timeout: float = 10) -> list[dict[str, Any]]:
        _wait(lambda: len(self.received(name)) >= count, timeout)
        return self.received(name)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/services/{path:.*}", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.attempts.setdefault(request.path, []).append(time.monotonic())
            script = self.script.get(request.path, [])
            answer = script.pop(0) if script else Answer()
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.status != 200:
            headers = {"retry-after": answer.retry_after} if answer.retry_after else {}
            return web.Response(
                status=answer.status, text="rate_limited" if answer.status == 429 else "no", headers=headers
            )
        with self._lock:
            self.messages.setdefault(request.path, []).append(json.loads(body))
        return web.Response(text="ok")


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
