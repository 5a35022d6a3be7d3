"""The proxy route: every ``/v1/*`` request, as a raw ASGI handler (ADR 0001)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.ports import Clock, ExchangeObserver, IdGenerator
from nexus.application.use_cases.forward_request import ForwardRequest
from nexus.domain.errors import InvalidRequest, ProxyError, RequestTooLarge
from nexus.domain.headers import client_response_headers, header_value
from nexus.domain.host import parse_host
from nexus.domain.proxy_request import JSON_BODY_PATHS, ProxyRequest, inspect_json_body
from nexus.entrypoints.http.asgi_io import AbortResponse, ClientGone, Message, Scope, send_proxy_error
from nexus.entrypoints.request_context import request_id_var

log = logging.getLogger(__name__)


class ProxyEndpoint:
    """Forward a request upstream and relay the answer byte for byte, chunk by chunk.

    Bodies of ``/v1/messages`` and ``count_tokens`` are read whole (they are validated and
    recorded) within ``max_request_size``; other bodies (files, batches) stream through
    unread. A client that disconnects cancels the upstream request at once. Just before the
    client gets the last byte of its answer, the exchange goes to ``write_ahead`` (the
    recorder's write-ahead log: a crash from then on loses nothing); once the client has it,
    the finished ``Exchange`` goes to the observer.
    """

    def __init__(
        self,
        *,
        forward: ForwardRequest,
        ids: IdGenerator,
        clock: Clock,
        observer: ExchangeObserver,
        max_request_size: int,
        trust_proxy_headers: bool,
        write_ahead: Callable[[Exchange], None] | None = None,
    ) -> None:
        self._forward = forward
        self._ids = ids
        self._clock = clock
        self._observer = observer
        self._max_request_size = max_request_size
        self._host_header = b"x-forwarded-host" if trust_proxy_headers else b"host"
        self._write_ahead = write_ahead

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = self._ids.new_id()
        request_id_var.set(request_id)
        tracker = _Tracker(
            request_id=request_id,
            scope=scope,
            clock=self._clock,
            keep_body=self._observer.needs_response_body,
            write_ahead=self._write_ahead,
        )
        try:
            await self._serve(scope, receive, send, tracker)
        except ClientGone:  # left while a streamed body was being read: no one to answer
            tracker.record.outcome = "client_cancelled"
        except Exception:
            if tracker.record.status:  # the answer had begun: the server drops the connection
                raise
            # A fault of ours before any answer: the client gets Anthropic's format, as every
            # other route's unexpected errors do, and the exchange says what happened.
            log.exception("Unexpected error on %s %s", scope["method"], tracker.record.path)
            error = ProxyError("Internal error in the proxy; see its log")
            tracker.reject(error)
            await send_proxy_error(send, error, tracker.rid)
        finally:
            self._observer.observe(tracker.finish())

    async def _serve(self, scope: Scope, receive: Any, send: Any, tracker: _Tracker) -> None:
        body = _BodyState()
        try:
            request, body_stream = await self._read_request(scope, receive, tracker, body)
        except ClientGone:
            tracker.record.outcome = "client_cancelled"
            return
        except ProxyError as exc:
            tracker.reject(exc)
            await send_proxy_error(send, exc, tracker.rid)
            return
        guard = _CancelOnDisconnect(receive, body)
        await guard.run(self._exchange(request, body_stream, send, tracker))
        if guard.disconnected:
            tracker.record.outcome = "client_cancelled"

    async def _read_request(
        self, scope: Scope, receive: Any, tracker: _Tracker, body_state: _BodyState
    ) -> tuple[ProxyRequest, AsyncIterator[bytes] | None]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host = parse_host(_first_value(header_value(headers, self._host_header)))
        tracker.record.domain = host.domain
        path = tracker.record.path
        body: bytes | None = None
        stream: AsyncIterator[bytes] | None = None
        summary = None
        if path in JSON_BODY_PATHS and scope["method"] == "POST":
            body = await _read_body(receive, headers, self._max_request_size)
            tracker.record.request_body = body
            body_state.done.set()
            summary = inspect_json_body(path, body)
            tracker.record.requested_model = summary.model
            tracker.record.stream = summary.stream
        elif _has_body(headers):
            stream = _stream_body(receive, body_state)
        else:
            body_state.done.set()
        request = ProxyRequest(
            request_id=tracker.record.request_id,
            method=scope["method"],
            path=path,
            query_string=tracker.record.query_string,
            headers=headers,
            host=host,
            body=body,
            summary=summary,
        )
        return request, stream

    async def _exchange(
        self, request: ProxyRequest, body_stream: AsyncIterator[bytes] | None, send: Any, tracker: _Tracker
    ) -> None:
        tracker.upstream_started()
        try:
            forwarded = await self._forward.execute(request, body_stream, attempts=tracker.record.upstream_attempts)
        except ProxyError as exc:
            if exc.status >= 500:
                log.warning("%s %s failed before upstream answered: %s", request.method, request.path, exc.message)
            if attempts := tracker.record.upstream_attempts:
                # Refused by the circuit or out of retries: the account its last attempt went with.
                tracker.record.account_id = attempts[-1].account_id
            tracker.reject(exc)
            await send_proxy_error(send, exc, tracker.rid)
            return
        tracker.record.account_id = forwarded.account_id
        response = forwarded.response
        try:
            await _relay(response, send, tracker)
        finally:
            forwarded.admission.release()
            await response.aclose()


class _Tracker:
    """The exchange record being filled in while the request is served."""

    def __init__(
        self,
        *,
        request_id: str,
        scope: Scope,
        clock: Clock,
        keep_body: bool,
        write_ahead: Callable[[Exchange], None] | None,
    ) -> None:
        self._clock = clock
        self._write_ahead = write_ahead
        self.keep_body = keep_body
        self._started = clock.monotonic()
        self.rid = request_id.encode()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        self.record = Exchange(
            request_id=request_id,
            method=scope["method"],
            path=raw_path.decode("latin-1"),
            query_string=scope.get("query_string", b""),
            domain=None,
            request_headers=scope["headers"],
            started_at_ms=clock.now_ms(),
        )

    def elapsed(self) -> float:
        return self._clock.monotonic() - self._started

    def upstream_started(self) -> None:
        self.record.upstream_started_s = self.elapsed()

    def reject(self, error: ProxyError) -> None:
        self.record.status = error.status
        self.record.outcome = "rejected"
        self.record.error = f"{error.error_type}: {error.message}"
        self.commit()

    def commit(self) -> None:
        """The answer is about to be complete: write the exchange ahead (once)."""
        if self._write_ahead is not None:
            self.record.duration_s = self.elapsed()
            self._write_ahead(self.record)
            self._write_ahead = None

    def finish(self) -> Exchange:
        self.record.duration_s = self.elapsed()
        return self.record


async def _relay(response: Any, send: Any, tracker: _Tracker) -> None:
    record = tracker.record
    record.status = response.status
    record.response_headers = response.headers
    if response.status >= 400:
        record.outcome = "upstream_error"
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": client_response_headers(response.headers, tracker.rid),
        }
    )
    chunks = record.response_chunks if tracker.keep_body else None
    # With a length, the client is done at its last byte, before the upstream stream ends.
    unsent = _content_length(response.headers)
    try:
        async for chunk in response.iter_raw():
            if record.first_byte_s is None:
                record.first_byte_s = tracker.elapsed()
            if chunks is not None:
                chunks.append(chunk)
            if unsent is not None:
                unsent -= len(chunk)
                if unsent <= 0:
                    tracker.commit()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except ProxyError as exc:
        record.outcome = "truncated"
        record.error = f"{exc.error_type}: {exc.message}"
        log.warning("Upstream broke off mid-response (%s); dropping the client connection", exc.message)
        raise AbortResponse(exc.message) from None
    tracker.commit()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = header_value(headers, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


class _BodyState:
    """Whether the request body has been consumed (``done``), and whether the client left
    while it was being read."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.client_left = False


class _CancelOnDisconnect:
    """Run the exchange while listening for the client going away, and cancel it if it does.

    The listener only starts once the request body has been consumed, so it never competes
    with the body reader for ``receive``.
    """

    def __init__(self, receive: Any, body: _BodyState) -> None:
        self._receive = receive
        self._body = body
        self._finished = False
        self.disconnected = False

    async def run(self, exchange: Coroutine[Any, Any, None]) -> None:
        task = asyncio.current_task()
        assert task is not None
        listener = asyncio.create_task(self._listen(task))
        try:
            await exchange
            self._finished = True
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            task.uncancel()
            log.info("Client disconnected; upstream request cancelled")
        finally:
            listener.cancel()

    async def _listen(self, task: asyncio.Task[Any]) -> None:
        await self._body.done.wait()
        if self._body.client_left:
            self.disconnected = True
            task.cancel()
            return
        while True:
            message: Message = await self._receive()
            if message["type"] == "http.disconnect":
                # Once the response is complete the server reports a disconnect too: not ours.
                if not self._finished:
                    self.disconnected = True
                    task.cancel()
                return


async def _read_body(receive: Any, headers: list[tuple[bytes, bytes]], limit: int) -> bytes:
    declared = header_value(headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"Request body exceeds the limit of {limit} bytes")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _stream_body(receive: Any, body: _BodyState) -> AsyncIterator[bytes]:
    """The client's body as the upstream client reads it. A client leaving mid-upload is not
    raised into the upstream client (which would report it as upstream unreachable, for the
    breaker to count): the guard is told, cancels the exchange, and the read waits for that."""
    try:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                body.client_left = True
                body.done.set()
                await asyncio.Event().wait()  # until the guard's cancellation arrives
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        body.done.set()


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    length = header_value(headers, b"content-length")
    return (length is not None and length.strip() not in (b"", b"0")) or header_value(
        headers, b"transfer-encoding"
    ) is not None


def _first_value(value: bytes | None) -> str | None:
    """A forwarded header may list several hosts; the first is the client's."""
    if value is None:
        return None
    try:
        return value.split(b",", 1)[0].strip().decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("Malformed Host header") from None
