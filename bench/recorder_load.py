"""The recorder alone: how many exchanges per second it stores into the embedded PostgreSQL.

Starts its own embedded server (data in a temporary directory, or ``--workdir``), migrates it,
then pushes ``--count`` synthetic exchanges (1 KB Messages request, the canned ~600-byte JSON
answer, Claude Code-like headers) through ``ExchangeRecorder`` with ``SqlAlchemyExchangeStore``
and a ``FileJournal``, as fast as ``observe`` takes them without overflowing the queue (the
queue and batch sizes are the proxy's defaults), and times it until all are stored. A warm-up
batch first pays for the schema check and the month's partitions.

The time is split into building rows (``build_row``: classification, usage, cost, body
decomposition and compression) and storing them (``SqlAlchemyExchangeStore.store``: statement
building, asyncpg, the server's work), and the CPU used by the server is read from /proc.

    .venv/bin/python bench/recorder_load.py [--count 20000] [--profile] [--json]

``--profile`` runs the timed part under cProfile and prints the top functions. The embedded
server is stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import pstats
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import payloads
import pg
import upstreams
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.embedded import start_embedded_postgres
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.application.exchange import Exchange
from nexus.application.recording import recorder as recorder_module
from nexus.application.recording.recorder import ExchangeRecorder
from nexus.application.recording.row import ExchangeRow

QUEUE_SIZE = 10_000  # the proxy's RECORDER_QUEUE_SIZE and RECORDER_BATCH_SIZE defaults
BATCH_SIZE = 500
WARMUP = 1_000


# --- synthetic exchanges --------------------------------------------------------------------

_REQUEST_BODY = payloads.small_body(stream=False)
_RESPONSE_BODY = payloads.message_json()


def _request_headers(session: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1:3000"),
        (b"accept", b"application/json"),
        (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
        (b"anthropic-version", b"2023-06-01"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.0.14 (external, cli)"),
        (b"x-api-key", b"sk-ant-api03-bench-bench-bench-bench-bench"),
        (b"x-app", b"cli"),
        (b"x-claude-code-session-id", session.encode()),
        (b"content-length", str(len(_REQUEST_BODY)).encode()),
    ]


_RESPONSE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_RESPONSE_BODY)).encode()),
    (b"request-id", payloads.REQUEST_ID.encode()),
    (b"anthropic-organization-id", b"00000000-0000-4000-8000-000000000000"),
]


class Exchanges:
    """``count`` finished non-streaming Messages exchanges, each with its own id, made one by
    one as they are pushed (as the proxy makes them), so that no more are alive at once than
    the recorder holds: a list of them all would put its weight on every garbage collection."""

    def __init__(self, count: int) -> None:
        self._ids = [str(uuid.uuid4()) for _ in range(count)]  # plain strings: no GC weight
        self._headers = _request_headers(str(uuid.uuid4()))

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Exchange]:
        now_ms = int(time.time() * 1000)
        for index, request_id in enumerate(self._ids):
            yield Exchange(
                request_id=request_id,
                method="POST",
                path="/v1/messages",
                query_string=b"beta=true",
                domain="127.0.0.1",
                requested_model=payloads.MODEL,
                stream=False,
                request_headers=self._headers,
                request_body=_REQUEST_BODY,
                status=200,
                response_headers=_RESPONSE_HEADERS,
                response_chunks=[_RESPONSE_BODY],
                started_at_ms=now_ms + index,
                upstream_started_s=0.0001,
                first_byte_s=0.0005,
                duration_s=0.0006,
            )


# --- timing ---------------------------------------------------------------------------------


class Timer:
    """Wall time spent inside row building and inside the store (the awaits included)."""

    def __init__(self) -> None:
        self.build_s = 0.0
        self.store_s = 0.0
        self.batches = 0

    def reset(self) -> None:
        self.build_s = self.store_s = 0.0
        self.batches = 0


class TimedStore:
    def __init__(self, inner: SqlAlchemyExchangeStore, timer: Timer) -> None:
        self._inner = inner
        self._timer = timer

    async def store(self, rows: Sequence[ExchangeRow]) -> None:
        started = time.perf_counter()
        try:
            await self._inner.store(rows)
        finally:
            self._timer.store_s += time.perf_counter() - started
            self._timer.batches += 1


@contextlib.contextmanager
def timed_build_row(timer: Timer) -> Any:
    original: Callable[..., ExchangeRow] = recorder_module.build_row

    def build_row(exchange: Exchange, **options: Any) -> ExchangeRow:
        started = time.perf_counter()
        try:
            return original(exchange, **options)
        finally:
            timer.build_s += time.perf_counter() - started

    recorder_module.build_row = build_row  # type: ignore[assignment]
    try:
        yield
    finally:
        recorder_module.build_row = original  # type: ignore[assignment]


async def push(recorder: ExchangeRecorder, batch: Exchanges, *, already: int, queue_size: int) -> None:
    """Hand every exchange to ``observe``, never more than the queue holds: what is neither
    stored nor being stored is in the queue, so ``pushed - stored`` stays below its size."""
    pushed = already
    for exchange in batch:
        while pushed - recorder.stored >= queue_size:  # noqa: ASYNC110 -- the recorder offers no event
            await asyncio.sleep(0.001)
        recorder.observe(exchange)
        pushed += 1


async def until_stored(recorder: ExchangeRecorder, total: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while recorder.stored + recorder.journaled < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {recorder.stored} of {total} exchanges stored after {limit_s:.0f} s")
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def profiled(enabled: bool, top: int = 30) -> AsyncIterator[None]:
    profile = cProfile.Profile() if enabled else None
    if profile is not None:
        profile.enable()
    try:
        yield
    finally:
        if profile is not None:
            profile.disable()
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(top)
                print(f"\n--- cProfile of the timed part, by {order} ---\n{out.getvalue()}", file=sys.stderr)


# --- the run --------------------------------------------------------------------------------


async def measure(url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    timer = Timer()
    server = pg.postmaster(workdir / "postgres")
    async with open_engine(url) as engine:
        await upgrade(engine)
        recorder = ExchangeRecorder(
            store=TimedStore(SqlAlchemyExchangeStore(engine), timer),  # type: ignore[arg-type]
            journal=FileJournal(workdir / "journal"),
            quarantine=FileQuarantine(workdir / "quarantine"),
            store_bodies=True,
            queue_size=args.queue_size,
            batch_size=args.batch_size,
        )
        with timed_build_row(timer):
            await recorder.start()
            try:
                await push(recorder, Exchanges(WARMUP), already=0, queue_size=args.queue_size)
                await until_stored(recorder, WARMUP, limit_s=120)
                batch = Exchanges(args.count)
                # As the proxy does once started (nexus.entrypoints.gc_tuning): what exists now
                # (modules, engine, recorder) stays out of every later collection.
                gc.collect()
                gc.freeze()
                timer.reset()
                cpu_server = upstreams.tree_cpu_s(server.pid) if server else None
                cpu_self = time.process_time()
                started = time.perf_counter()
                async with profiled(args.profile):
                    await push(recorder, batch, already=WARMUP, queue_size=args.queue_size)
                    await until_stored(recorder, WARMUP + args.count, limit_s=max(120.0, args.count / 100))
                elapsed = time.perf_counter() - started
                cpu_self = time.process_time() - cpu_self
                cpu_server = (
                    upstreams.tree_cpu_s(server.pid) - cpu_server if server and cpu_server is not None else None
                )
            finally:
                await recorder.stop()
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT count(*) FROM exchanges"))).scalar_one()
            parts = (await connection.execute(text("SELECT count(*) FROM body_parts"))).scalar_one()
    timed = args.count
    return {
        "exchanges": timed,
        "warmup": WARMUP,
        "queue_size": args.queue_size,
        "batch_size": args.batch_size,
        "request_body_bytes": len(_REQUEST_BODY),
        "response_body_bytes": len(_RESPONSE_BODY),
        "seconds": round(elapsed, 3),
        "exchanges_per_s": round(timed / elapsed, 1),
        "build_rows_s": round(timer.build_s, 3),
        "store_s": round(timer.store_s, 3),
        "other_s": round(elapsed - timer.build_s - timer.store_s, 3),
        "batches": timer.batches,
        "build_us_per_exchange": round(timer.build_s / timed * 1e6, 1),
        "store_us_per_exchange": round(timer.store_s / timed * 1e6, 1),
        "python_cpu_s": round(cpu_self, 3),
        "postgres_cpu_s": None if cpu_server is None else round(cpu_server, 3),
        "stored_by_recorder": recorder.stored,
        "journaled": recorder.journaled,
        "rows_in_table": int(rows),
        "rows_expected": WARMUP + timed,
        "body_part_rows": int(parts),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    owned = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="nexus-recorder-")) if owned else Path(args.workdir)
    pgdata = workdir / "postgres"
    try:
        url = start_embedded_postgres(workdir)
        return asyncio.run(measure(url, workdir, args))
    finally:
        # The server would stop when this process exits; stop it now, deliberately.
        pg.stop_postgres(pgdata)
        if owned:
            import shutil  # noqa: PLC0415

            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="exchanges timed (default 20000)")
    parser.add_argument("--queue-size", type=int, default=QUEUE_SIZE, help=f"recorder queue (default {QUEUE_SIZE})")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"recorder batch (default {BATCH_SIZE})")
    parser.add_argument("--workdir", help="directory for the server's data and the journal (default: a temp dir)")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed part (printed to stderr)")
    parser.add_argument("--json", action="store_true", help="print one RECORDER_RESULT <json> line")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    def interrupted(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    result = run(args)
    if args.json:
        print("RECORDER_RESULT " + json.dumps(result), flush=True)
    else:
        for key, value in result.items():
            print(f"{key:<24}{value}")
    return 0 if result["rows_in_table"] == result["rows_expected"] and not result["journaled"] else 1


if __name__ == "__main__":
    sys.exit(main())
