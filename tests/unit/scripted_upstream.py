"""A fake upstream for the hot path's seams: scripted answers and failures, no network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from nexus.application.ports import UpstreamRequest


class ScriptedResponse:
    """An UpstreamResponse whose body is a list of chunks.

    ``fail_after`` raises that error once the chunks are out (upstream breaking off);
    ``hold`` makes the body wait after its chunks until the event is set (a slow stream).
    """

    def __init__(
        self,
        status: int = 200,
        headers: Sequence[tuple[bytes, bytes]] = (),
        chunks: Sequence[bytes] = (b'{"ok":true}',),
        *,
        fail_after: Exception | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self._chunks = list(chunks)
        self._fail_after = fail_after
        self._hold = hold
        self.closed = False
        self.chunks_read = 0

    async def iter_raw(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self.chunks_read += 1
            yield chunk
        if self._hold is not None:
            await self._hold.wait()
        if self._fail_after is not None:
            raise self._fail_after

    async def aclose(self) -> None:
        self.closed = True


Step = ScriptedResponse | BaseException


class ScriptedUpstream:
    """An UpstreamClient answering each ``send`` with the next step of its script.

    A step is a response to return or an exception to raise; the last step repeats once the
    script runs out. ``requests`` holds every request sent, streamed bodies read into bytes.
    ``gate``, when set, makes each call wait for it before answering (an upstream in flight).
    """

    def __init__(self, *steps: Step, gate: asyncio.Event | None = None) -> None:
        assert steps, "a script needs at least one step"
        self._steps = list(steps)
        self.requests: list[UpstreamRequest] = []
        self.bodies: list[bytes | None] = []
        self.responses: list[ScriptedResponse] = []
        self.gate = gate
        self.cancelled = 0

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def send(self, request: UpstreamRequest) -> ScriptedResponse:
        self.requests.append(request)
        body = request.body
        if body is None or isinstance(body, bytes):
            self.bodies.append(body)
        else:
            self.bodies.append(b"".join([chunk async for chunk in body]))
        step = self._steps.pop(0) if len(self._steps) > 1 else self._steps[0]
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if isinstance(step, BaseException):
            raise step
        if step in self.responses:
            # The last step repeats: a fresh copy, so each attempt has its own body and close.
            step = ScriptedResponse(
                step.status, step.headers, step._chunks, fail_after=step._fail_after, hold=step._hold
            )
        self.responses.append(step)
        return step
