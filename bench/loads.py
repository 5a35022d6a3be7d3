"""Load generators: wrk for throughput and latency, a raw asyncio HTTP/1.1 client for streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import upstreams

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_post.lua"
MESSAGES_PATH = "/v1/messages?beta=true"
STREAM_PATH = MESSAGES_PATH + "&bench_stream=1"
HOLD_PATH = STREAM_PATH + "&bench_hold=1"


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile, rounded to the microsecond (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return round(ordered[rank - 1], 3)


# --- wrk ------------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise upstreams.StartupError("wrk is not installed (make bench installs it)")
    return found


def run_wrk(port: int, path: str, body_file: Path, *, concurrency: int, duration: int) -> dict[str, Any]:
    """One wrk run (one thread, ``concurrency`` connections); its numbers, latencies in ms.

    ``requests`` were answered; ``sent`` were begun (the rest was in flight when wrk stopped).
    """
    argv = [
        wrk_binary(), "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), f"http://{upstreams.HOST}:{port}{path}",
    ]  # fmt: skip
    env = dict(os.environ, BENCH_BODY=str(body_file))
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60, check=False)  # noqa: S603
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = raw["duration_us"] / 1e6
    errors = {
        "non_2xx": raw["status"],
        "connect": raw["connect"],
        "read": raw["read"],
        "write": raw["write"],
        "timeout": raw["timeout"],
    }
    return {
        "requests": raw["requests"],
        "sent": raw["sent"],
        "duration_s": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 4),
        "max_ms": raw["max_us"] / 1000,
        "errors": {**errors, "total": sum(errors.values())},
    }


# --- a raw HTTP/1.1 client ------------------------------------------------------------------


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    first_byte: float | None = None  # perf_counter() when the first body bytes arrived
    done: float | None = None  # perf_counter() when the body was complete

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.done is not None and b"event: message_stop" in self.body


def build_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"host: {upstreams.HOST}:{port}\r\n"
        "content-type: application/json\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "accept: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader, on_first: Callable[[], None] | None = None) -> Response:
    """Read one response; the first body bytes are stamped (and reported) as they arrive."""
    response = Response()
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    response.status = int(status_line.split(" ", 2)[1])
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            response.headers[name.strip().lower()] = value.strip()
    parts: list[bytes] = []

    def got(data: bytes) -> None:
        if data and response.first_byte is None:
            response.first_byte = time.perf_counter()
            if on_first is not None:
                on_first()
        parts.append(data)

    if response.headers.get("transfer-encoding", "").lower() == "chunked":
        await _read_chunked(reader, got)
    elif "content-length" in response.headers:
        remaining = int(response.headers["content-length"])
        while remaining:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"".join(parts), remaining)
            got(data)
            remaining -= len(data)
    else:
        while data := await reader.read(65536):
            got(data)
    response.body = b"".join(parts)
    response.done = time.perf_counter()
    return response


async def _read_chunked(reader: asyncio.StreamReader, got: Callable[[bytes], None]) -> None:
    while size := int((await reader.readline()).split(b";", 1)[0], 16):
        got(await reader.readexactly(size))
        await reader.readexactly(2)
    while (await reader.readline()) not in (b"\r\n", b""):  # trailers
        pass


class Connection:
    """One keep-alive connection that reopens itself after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes, wait_s: float) -> tuple[float, Response]:
        """Send ``request``; the perf_counter() just before it was written and the response."""
        try:
            if self._streams is None:
                self._streams = await asyncio.wait_for(asyncio.open_connection(upstreams.HOST, self.port), wait_s)
            reader, writer = self._streams
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            response = await asyncio.wait_for(read_response(reader), wait_s)
        except BaseException:
            await self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return started, response

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


# --- time to first byte ---------------------------------------------------------------------


async def measure_ttfb(targets: dict[str, int], body: bytes, *, count: int, warmup: int) -> dict[str, Any]:
    """Sequential streaming requests at concurrency 1, alternating between the targets.

    Alternating request by request spreads any background noise evenly over the targets.
    """
    connections = {name: Connection(port) for name, port in targets.items()}
    requests = {name: build_request(port, STREAM_PATH, body) for name, port in targets.items()}
    ttfb: dict[str, list[float]] = {name: [] for name in targets}
    total: dict[str, list[float]] = {name: [] for name in targets}
    errors = dict.fromkeys(targets, 0)
    names = list(targets)
    try:
        for index in range(warmup + count):
            for name in names if index % 2 == 0 else reversed(names):
                try:
                    started, response = await connections[name].exchange(requests[name], wait_s=10)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                    errors[name] += 1
                    continue
                if not response.ok or response.first_byte is None or response.done is None:
                    errors[name] += 1
                elif index >= warmup:
                    ttfb[name].append((response.first_byte - started) * 1000)
                    total[name].append((response.done - started) * 1000)
    finally:
        for connection in connections.values():
            await connection.close()
    return {
        name: {
            "requests": len(ttfb[name]),
            "errors": errors[name],
            "ttfb_p50_ms": percentile(ttfb[name], 50),
            "ttfb_p99_ms": percentile(ttfb[name], 99),
            "total_p50_ms": percentile(total[name], 50),
        }
        for name in targets
    }


# --- many open streams ----------------------------------------------------------------------


async def hold_streams(
    proxy_port: int, upstream_port: int, body: bytes, *, count: int, rss: Callable[[], float], wait_s: float
) -> dict[str, Any]:
    """Open ``count`` streams through the proxy at once (one connection each), sample the
    proxy's memory while all are open, then let the upstream finish them and check them all."""
    request = build_request(proxy_port, HOLD_PATH, body)
    opened = 0
    all_open = asyncio.Event()
    connect_slots = asyncio.Semaphore(100)  # open gradually rather than as one SYN flood
    samples: list[float] = []
    failures: dict[str, int] = {}

    def first_bytes() -> None:
        nonlocal opened
        opened += 1
        if opened == count:
            all_open.set()

    async def one() -> Response | None:
        writer = None
        try:
            async with connect_slots:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(upstreams.HOST, proxy_port), 10)
                writer.write(request)
                await writer.drain()
            return await read_response(reader, on_first=first_bytes)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            return None
        finally:
            if writer is not None:
                writer.close()

    async def sample_forever() -> None:
        while True:
            samples.append(rss())
            await asyncio.sleep(0.1)

    before = rss()
    started = time.perf_counter()
    sampler = asyncio.create_task(sample_forever())
    tasks = [asyncio.create_task(one()) for _ in range(count)]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_open.wait(), wait_s)
        open_after = time.perf_counter() - started
        streams_open = opened
        await asyncio.sleep(1.0)  # let the proxy settle with everything open
        rss_open = max(rss() for _ in range(3))
        release = await asyncio.to_thread(upstreams.http_post, upstream_port, "/bench/release")
        finished, pending = await asyncio.wait(tasks, timeout=wait_s)
    finally:
        sampler.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(sampler, *tasks, return_exceptions=True)
    responses = [task.result() for task in finished if not task.cancelled()]
    completed = sum(1 for response in responses if response is not None and response.ok)
    return {
        "requested": count,
        "opened": streams_open,
        "open_seconds": round(open_after, 2),
        "completed": completed,
        "unfinished": len(pending),
        "failures": failures,
        "upstream_release": json.loads(release) if release.startswith(b"{") else release.decode(errors="replace"),
        "rss_before_mb": round(before, 1),
        "rss_open_mb": round(rss_open, 1),
        "rss_peak_mb": round(max([*samples, rss_open]), 1),
        "rss_after_mb": round(rss(), 1),
    }
