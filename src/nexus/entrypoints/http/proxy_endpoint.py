"""The proxy route: every ``/v1/*`` request, as a raw ASGI handler (ADR 0001)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from nexus.application.ports import IdGenerator, UpstreamResponse
from nexus.application.use_cases.forward_request import ForwardRequest
from nexus.domain.errors import InvalidRequest, ProxyError, RequestTooLarge
from nexus.domain.headers import client_response_headers, header_value
from nexus.domain.host import parse_host
from nexus.domain.proxy_request import JSON_BODY_PATHS, ProxyRequest, inspect_json_body
from nexus.entrypoints.http.asgi_io import AbortResponse, ClientGone, Message, Scope, send_proxy_error

log = logging.getLogger(__name__)


class ProxyEndpoint:
    """Forward a request upstream and relay the answer byte for byte, chunk by chunk.

    Bodies of ``/v1/messages`` and ``count_tokens`` are read whole (they are validated and,
    later, recorded) within ``max_request_size``; other bodies (files, batches) stream through
    unread. A client that disconnects cancels the upstream request at once.
    """

    def __init__(
        self, *, forward: ForwardRequest, ids: IdGenerator, max_request_size: int, trust_proxy_headers: bool
    ) -> None:
        self._forward = forward
        self._ids = ids
        self._max_request_size = max_request_size
        self._host_header = b"x-forwarded-host" if trust_proxy_headers else b"host"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = self._ids.new_id()
        rid = request_id.encode()
        body_done = asyncio.Event()
        try:
            request, body_stream = await self._read_request(scope, receive, request_id, body_done)
        except ClientGone:
            return
        except ProxyError as exc:
            await send_proxy_error(send, exc, rid)
            return
        await _CancelOnDisconnect(receive, body_done).run(self._exchange(request, body_stream, send, rid))

    async def _read_request(
        self, scope: Scope, receive: Any, request_id: str, body_done: asyncio.Event
    ) -> tuple[ProxyRequest, AsyncIterator[bytes] | None]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host = parse_host(_first_value(header_value(headers, self._host_header)))
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1")
        body: bytes | None = None
        stream: AsyncIterator[bytes] | None = None
        summary = None
        if path in JSON_BODY_PATHS and scope["method"] == "POST":
            body = await _read_body(receive, headers, self._max_request_size)
            body_done.set()
            summary = inspect_json_body(path, body)
        elif _has_body(headers):
            stream = _stream_body(receive, body_done)
        else:
            body_done.set()
        request = ProxyRequest(
            request_id=request_id,
            method=scope["method"],
            path=path,
            query_string=scope.get("query_string", b""),
            headers=headers,
            host=host,
            body=body,
            summary=summary,
        )
        return request, stream

    async def _exchange(
        self, request: ProxyRequest, body_stream: AsyncIterator[bytes] | None, send: Any, rid: bytes
    ) -> None:
        try:
            response = await self._forward.execute(request, body_stream)
        except ProxyError as exc:
            if exc.status >= 500:
                log.warning("%s %s failed before upstream answered: %s", request.method, request.path, exc.message)
            await send_proxy_error(send, exc, rid)
            return
        try:
            await _relay(response, send, rid)
        finally:
            await response.aclose()


async def _relay(response: UpstreamResponse, send: Any, rid: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": client_response_headers(response.headers, rid),
        }
    )
    try:
        async for chunk in response.iter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except ProxyError as exc:
        log.warning("Upstream broke off mid-response (%s); dropping the client connection", exc.message)
        raise AbortResponse(exc.message) from None
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class _CancelOnDisconnect:
    """Run the exchange while listening for the client going away, and cancel it if it does.

    The listener only starts once the request body has been consumed, so it never competes
    with the body reader for ``receive``.
    """

    def __init__(self, receive: Any, body_done: asyncio.Event) -> None:
        self._receive = receive
        self._body_done = body_done
        self._finished = False
        self._disconnected = False

    async def run(self, exchange: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        listener = asyncio.create_task(self._listen(task))
        try:
            await exchange
            self._finished = True
        except asyncio.CancelledError:
            if not self._disconnected:
                raise
            task.uncancel()
            log.info("Client disconnected; upstream request cancelled")
        finally:
            listener.cancel()

    async def _listen(self, task: asyncio.Task[Any]) -> None:
        await self._body_done.wait()
        while True:
            message: Message = await self._receive()
            if message["type"] == "http.disconnect":
                # Once the response is complete the server reports a disconnect too: not ours.
                if not self._finished:
                    self._disconnected = True
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


async def _stream_body(receive: Any, done: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        done.set()


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
