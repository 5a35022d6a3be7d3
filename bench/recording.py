"""The recording scenarios: memory over 100,000 recorded requests, the recorder alone, the
bytes stored per request of a long conversation, conversation linking under load, and the
dashboard's pages over what was recorded.

(Recording on against off under wrk is part of the wrk matrix in ``run.py``.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loads
import payloads
import pg
import storage
import upstreams

BENCH_DIR = Path(__file__).resolve().parent


@contextlib.contextmanager
def nginx_and_recording_proxy(workdir: Path, name: str, workers: int) -> Any:
    nginx = upstreams.start_nginx(workdir)
    try:
        proxy = upstreams.start_proxy(workdir, nginx.port, workers=workers, name=name, recording=True)
        try:
            yield nginx, proxy
        finally:
            proxy.stop()
    finally:
        nginx.stop()


# --- RSS over 100,000 requests --------------------------------------------------------------


def rss_over_requests(args: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """wrk through a fresh recording proxy until ``args.rss_requests`` requests are answered,
    in runs of up to 15 s, sampling the proxy's RSS after the warm-up and after every run."""
    target, concurrency = args.rss_requests, args.rss_concurrency
    body = workdir / "rss-1kb.json"
    body.write_bytes(payloads.small_body(stream=False))
    with nginx_and_recording_proxy(workdir, "rss", args.workers) as (_nginx, proxy):
        url = proxy.database_url()
        rss = lambda: round(upstreams.tree_rss_mb(proxy.pid), 1)  # noqa: E731
        fresh = rss()
        say(f"\nRSS over {target:,} requests: recording proxy on :{proxy.port}, wrk c={concurrency}, 1 KB ...")
        path = loads.MESSAGES_PATH + "&bench_run=rss-warmup"
        after = pg.since()
        warmup = loads.run_wrk(proxy.port, path, body, concurrency=concurrency, duration=max(3, args.warmup))
        pg.wait_for_rows(
            url, [_query(path)], after=after,
            sent=warmup["sent"], completed=warmup["requests"], timeout=args.drain_timeout,
        )  # fmt: skip
        after = pg.since()
        time.sleep(1.0)
        start = rss()
        samples = [{"requests": 0, "rss_mb": start}]
        runs: list[dict[str, Any]] = []
        queries: list[str] = []
        answered = 0
        while answered < target:
            rate = runs[-1]["rps"] if runs else None
            duration = 10 if not rate else min(15, max(2, math.ceil((target - answered) / rate)))
            path = loads.MESSAGES_PATH + f"&bench_run=rss-{len(runs) + 1}"
            run = loads.run_wrk(proxy.port, path, body, concurrency=concurrency, duration=duration)
            runs.append(run)
            queries.append(_query(path))
            answered += run["requests"]
            samples.append({"requests": answered, "rss_mb": rss(), "rps": run["rps"]})
            say(f"  {answered:>9,} requests  {run['rps']:>7,.0f} req/s  RSS {samples[-1]['rss_mb']:.1f} MB")
        end = rss()
        recorded = pg.wait_for_rows(
            url, queries, after=after,
            sent=sum(run["sent"] for run in runs), completed=answered, timeout=args.drain_timeout,
        )  # fmt: skip
        time.sleep(1.0)
        settled = rss()
    seconds = sum(run["duration_s"] for run in runs)
    return {
        "requests": answered,
        "target_requests": target,
        "concurrency": concurrency,
        "body": "1kb",
        "wrk_runs": len(runs),
        "seconds": round(seconds, 1),
        "rps": round(answered / seconds, 1) if seconds else None,
        "errors": sum(run["errors"]["total"] for run in runs),
        "warmup_requests": warmup["requests"],
        "rss_fresh_mb": fresh,
        "rss_start_mb": start,
        "rss_end_mb": end,
        "rss_end_settled_mb": settled,
        "growth_mb": round(settled - start, 1),
        "samples": samples,
        "recorded": recorded,
    }


def _query(path: str) -> str:
    return path.partition("?")[2]


# --- the recorder alone ---------------------------------------------------------------------


def recorder_alone(args: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """``recorder_load.py`` in its own process (its own embedded PostgreSQL), its JSON result."""
    say(f"\nrecorder alone: {args.recorder_exchanges:,} exchanges of 1 KB into its own embedded PostgreSQL ...")
    argv = ["--count", str(args.recorder_exchanges)]
    return _script(workdir / "recorder", "recorder_load.py", "RECORDER_RESULT", argv, say)


def linker_alone(args: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """``linker_load.py`` in its own process (its own embedded PostgreSQL), its JSON result."""
    say(
        f"\nconversation linking: {args.link_conversations} conversations x {args.link_turns} turns, a backlog, "
        f"then {args.link_live_rows:,} rows live, on time and late, into its own embedded PostgreSQL ..."
    )
    argv = ["--conversations", str(args.link_conversations), "--turns", str(args.link_turns),
            "--live-rows", str(args.link_live_rows)]  # fmt: skip
    return _script(workdir / "linker", "linker_load.py", "LINKING_RESULT", argv, say)


def dashboard_pages(args: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """``dashboard_load.py`` in its own process (its own embedded PostgreSQL and dashboard)."""
    small = f"{args.dashboard_small:,}, then " if 0 < args.dashboard_small < args.dashboard_requests else ""
    say(
        f"\ndashboard: every page, {args.dashboard_samples} requests each, with {small}"
        f"{args.dashboard_requests:,} requests stored in its own embedded PostgreSQL ..."
    )
    argv = ["--requests", str(args.dashboard_requests), "--small", str(args.dashboard_small),
            "--samples", str(args.dashboard_samples)]  # fmt: skip
    return _script(workdir / "dashboard", "dashboard_load.py", "DASHBOARD_RESULT", argv, say, timeout=900)


def _script(
    home: Path, script: str, marker: str, options: list[str], say: Callable[[str], None], *, timeout: float = 300
) -> dict[str, Any]:
    """Run a bench script with ``--json --workdir home``; the JSON after its ``marker``. Exit
    status 1 (a result that misses its check) still gives the result."""
    home.mkdir(exist_ok=True)
    argv = [sys.executable, str(BENCH_DIR / script), "--json", "--workdir", str(home), *options]
    log = home / "stderr.log"
    env = dict(os.environ, PYTHONPATH=str(BENCH_DIR))
    with log.open("w") as errors:
        # Its own session, so that on Ctrl-C it is stopped in order (SIGTERM: it stops its server).
        process = subprocess.Popen(  # noqa: S603 -- fixed argv built by the benchmark
            argv, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, start_new_session=True
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except BaseException:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            raise
        finally:
            if note := pg.stop_postgres(home / "postgres"):
                say(f"  {note}: {script} left it running")
    line = next((ln for ln in out.splitlines() if ln.startswith(marker + " ")), None)
    if process.returncode not in (0, 1) or line is None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{script} failed ({process.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(line.removeprefix(marker + " "))
    return result


# --- bytes stored per request ---------------------------------------------------------------


def storage_per_request(args: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The codec's accounting for the 200 requests, then the same requests through a fresh
    recording proxy: how much its database grew."""
    say("\nstorage: a 200-request conversation, decomposed as the store keeps it ...")
    bodies = storage.conversation()
    result = storage.account(bodies)
    with nginx_and_recording_proxy(workdir, "storage", args.workers) as (_nginx, proxy):
        url = proxy.database_url()
        before = pg.storage_bytes(url)
        path = (loads.STREAM_PATH if json.loads(bodies[0])["stream"] else loads.MESSAGES_PATH) + "&bench_run=storage"
        after = pg.since()
        answered = asyncio.run(_send_all(proxy.port, path, bodies))
        recorded = pg.wait_for_rows(
            url, [_query(path)], after=after, sent=len(bodies), completed=answered, timeout=args.drain_timeout
        )
        after = pg.storage_bytes(url)
    grown = {key: after[key] - before[key] for key in after}
    total = grown["exchanges"] + grown["body_parts"]
    result["database"] = {
        "answered": answered,
        "recorded": recorded,
        "exchanges_bytes": grown["exchanges"],
        "body_parts_bytes": grown["body_parts"],
        "body_part_rows": grown["body_part_rows"],
        "bytes_per_request": round(total / len(bodies)),
        "ratio": round(total / result["raw_bytes"], 4),
    }
    return result


async def _send_all(port: int, path: str, bodies: list[bytes]) -> int:
    """Send the bodies one after another on one connection; how many were answered 200."""
    connection = loads.Connection(port)
    answered = 0
    try:
        for body in bodies:
            _, response = await connection.exchange(loads.build_request(port, path, body), wait_s=30)
            answered += response.status == 200
    finally:
        await connection.close()
    return answered
