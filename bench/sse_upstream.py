"""A tiny streaming upstream for the benchmark, on raw asyncio streams (run as its own process).

Every POST gets an SSE answer in chunked encoding on a keep-alive connection: the headers and
``message_start`` at once, the remaining events later. When does "later" come?

- by default after ``--delay-ms`` (what the time-to-first-byte measurement needs);
- with ``bench_hold=1`` in the query string, when ``POST /bench/release`` arrives (or after
  ``--hold-timeout`` seconds), so a client can keep a thousand streams open at once. Once
  released, held streams are not held any more.

``GET /bench/health`` answers 200; ``GET /bench/stats`` reports how many streams are held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal

import payloads

EVENTS = payloads.sse_events()
FIRST = EVENTS[0]
REST = b"".join(EVENTS[1:])
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"request-id: " + payloads.REQUEST_ID.encode() + b"\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _plain(status: str, text: str) -> bytes:
    body = text.encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Upstream:
    def __init__(self, delay: float, hold_timeout: float) -> None:
        self.delay = delay
        self.hold_timeout = hold_timeout
        self.release = asyncio.Event()
        self.holding = 0
        self.served = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False once the connection should close."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        await _discard_body(reader, headers)
        keep_alive = headers.get("connection", "").lower() != "close"
        path, _, query = target.partition("?")
        if path == "/bench/health":
            writer.write(_plain("200 OK", "ok"))
        elif path == "/bench/stats":
            stats = {"holding": self.holding, "served": self.served, "connections": self.connections}
            writer.write(_plain("200 OK", json.dumps(stats)))
        elif path == "/bench/release" and method == "POST":
            released = self.holding
            self.release.set()
            writer.write(_plain("200 OK", json.dumps({"released": released})))
        elif method == "POST":
            await self._stream(writer, hold="bench_hold=1" in query.split("&"))
        else:
            writer.write(_plain("404 Not Found", "not found"))
        await writer.drain()
        return keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, *, hold: bool) -> None:
        writer.write(SSE_HEAD + _chunk(FIRST))
        await writer.drain()
        if hold:
            self.holding += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), self.hold_timeout)
            finally:
                self.holding -= 1
        else:
            await asyncio.sleep(self.delay)
        writer.write(_chunk(REST) + b"0\r\n\r\n")
        self.served += 1


async def _discard_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # data and its CRLF; the last chunk has no data
            if size == 0:
                return
    length = int(headers.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(length)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--hold-timeout", type=float, default=120.0)
    args = parser.parse_args()
    upstream = Upstream(args.delay_ms / 1000, args.hold_timeout)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", args.port, backlog=4096)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the proxy
        asyncio.run(main())
    else:
        uvloop.run(main())
