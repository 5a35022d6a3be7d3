"""Loopback load benchmark of claude-nexus, in one go (``make bench``).

1. wrk against nginx (a fixed-response upstream), directly and through the proxy with
   recording off (``wrk``) and on (``recording``: embedded PostgreSQL, every exchange stored,
   the stored rows counted against the requests wrk sent and completed):
   {1 KB, 200 KB Claude Code-sized body} x {non-streaming, streaming} x {c=1, c=32}.
2. Time to first byte of streams at c=1, directly and through the proxy, against an asyncio
   upstream that sends the first event at once and the rest 20 ms later.
3. The proxy's RSS with 1,000 streams open at once (that upstream holds them open).
4. ``recorder``: the recorder alone, storing 1 KB exchanges into its own embedded PostgreSQL.
5. ``rss100k``: the recording proxy's RSS after a warm-up and after 100,000 more requests.
6. ``storage``: bytes stored per request of a real 200-request conversation, by the body
   codec's accounting and as the database of a recording proxy grows.
7. ``linking``: conversation linking in its own embedded PostgreSQL: a backlog's throughput,
   live latency from storing a row to its link, late arrivals against an in-order rebuild.
8. ``dashboard``: every dashboard page timed over 100,000 stored requests (its own embedded
   PostgreSQL, seeded in SQL), and whether any page's rows grow with the data.

It prints tables and the goals, and writes everything to a JSON file (bench/results/latest.json).
Every process it starts is stopped again, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import itertools
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import loads
import payloads
import pg
import recording
import report
import upstreams

BENCH_DIR = Path(__file__).resolve().parent
SCENARIOS = (
    "wrk",
    "recording",
    "notify",
    "limits",
    "ttfb",
    "rss",
    "recorder",
    "rss100k",
    "storage",
    "linking",
    "recloop",
    "dashboard",
)
SLACK_ONLY = bool(os.environ.get("BENCH_NOTIFY_SLACK_ONLY"))  # the notify target without the telemetry endpoint
DEFAULT_SCENARIOS = tuple(name for name in SCENARIOS if name != "recloop")  # recloop: asked for by name


# (option, type, default, help); each can also be set as BENCH_<OPTION> in the environment.
_OPTIONS: tuple[tuple[str, type, str, str], ...] = (
    ("duration", int, "5", "seconds per wrk run"),
    ("warmup", int, "1", "seconds of warm-up before each wrk run (0 skips it)"),
    ("rounds", int, "3", "wrk runs per target and case, interleaved across the targets; the median counts"),
    ("scenarios", str, ",".join(DEFAULT_SCENARIOS), "what to run, a comma-separated subset of " + ",".join(SCENARIOS)),
    ("bodies", str, "1kb,200kb", "wrk request bodies, comma-separated"),
    ("concurrency", str, "1,32", "wrk connection counts, comma-separated"),
    ("ttfb-requests", int, "300", "streams per target for the time to first byte"),
    ("streams", int, "1000", "concurrent open streams for the RSS test"),
    ("workers", int, "1", "proxy worker processes (passed as --workers when above 1)"),
    ("recorder-exchanges", int, "20000", "exchanges the recorder alone stores (timed)"),
    ("link-conversations", int, "30", "conversations of the linking scenario"),
    ("link-turns", int, "30", "main-line requests per conversation there"),
    ("link-live-rows", int, "1000", "rows stored live there, on time and late"),
    ("dashboard-requests", int, "100000", "requests stored under the dashboard (seeded in SQL)"),
    ("dashboard-small", int, "10000", "pages measured first with this many, to see rows grow (0 skips)"),
    ("dashboard-samples", int, "20", "timed requests per dashboard page"),
    ("rss-requests", int, "100000", "requests through the recording proxy between the RSS samples"),
    ("rss-concurrency", int, "32", "wrk connections for those requests"),
    ("drain-timeout", int, "60", "seconds to wait for the recorder to store a run's exchanges"),
    ("output", Path, str(BENCH_DIR / "results" / "latest.json"), "the JSON results file"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Loopback load benchmark of claude-nexus (make bench).")
    for name, kind, default, text in _OPTIONS:
        variable = "BENCH_" + name.upper().replace("-", "_")
        parser.add_argument(
            f"--{name}",
            type=kind,
            default=kind(os.environ.get(variable, default)),
            help=f"{text} ({variable}, {default})",
        )
    args = parser.parse_args()
    args.scenarios = _choices(args.scenarios, SCENARIOS, parser)
    args.bodies = _choices(args.bodies, ("1kb", "200kb"), parser)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    return args


def _choices(text: str, allowed: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    chosen = [item.strip().lower() for item in text.split(",") if item.strip()]
    unknown = set(chosen) - set(allowed)
    if unknown:
        parser.error(f"unknown {', '.join(sorted(unknown))}; choose from {', '.join(allowed)}")
    return [item for item in allowed if item in chosen]


def say(text: str) -> None:
    print(text, flush=True)


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def _sigterm_interrupts() -> None:
    """SIGTERM stops the benchmark the way Ctrl-C does: processes stopped, partial results kept."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def machine() -> dict[str, Any]:
    def version(argv: list[str]) -> str | None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
        except OSError:
            return None
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else None

    git = ["git", "-C", str(BENCH_DIR.parent)]
    revision = version([*git, "rev-parse", "--short", "HEAD"])
    dirty = version([*git, "status", "--porcelain", "--", "src"])
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg()[0],
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "--version"]),
        "revision": None if revision is None else revision + ("-dirty" if dirty else ""),
    }


@contextlib.contextmanager
def running(start: Callable[[], upstreams.Service]) -> Iterator[upstreams.Service]:
    service = start()
    try:
        yield service
    finally:
        service.stop()


# --- the scenarios --------------------------------------------------------------------------


def wrk_targets(scenarios: list[str]) -> list[str]:
    """``wrk``: direct and the proxy with recording off; ``recording``: the proxy with it off
    and on (the ratio needs both)."""
    targets = ["direct", "proxy"] if "wrk" in scenarios else []
    if "recording" in scenarios:
        targets += [target for target in ("proxy", "proxy+rec") if target not in targets]
    if "notify" in scenarios:
        targets += [target for target in ("proxy", "proxy+ntf") if target not in targets]
    if "limits" in scenarios:
        targets += [target for target in ("proxy", "proxy+lim") if target not in targets]
    if "recloop" in scenarios:  # recording on the proxy's own event loop (RECORDER_PROCESS=false)
        targets += [target for target in ("proxy", "proxy+rec", "proxy+loop") if target not in targets]
    return targets


def wrk_matrix(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    targets = wrk_targets(args.scenarios)
    bodies: dict[tuple[str, bool], Path] = {}
    for stream in (False, True):
        for name, make in (("1kb", payloads.small_body), ("200kb", payloads.claude_code_body)):
            path = workdir / f"{name}-{'stream' if stream else 'json'}.json"
            path.write_bytes(make(stream=stream))
            bodies[name, stream] = path
    with contextlib.ExitStack() as stack:
        nginx = stack.enter_context(running(lambda: upstreams.start_nginx(workdir)))
        ports = {"direct": nginx.port}
        proxies: dict[str, upstreams.ProxyService] = {}
        started = [f"nginx on :{nginx.port}"]
        notify = notify_env(stack, workdir, started) if "proxy+ntf" in targets else {}
        # proxy+lim: every traffic limit and the runaway guard on, set too high to refuse anything.
        never = str(10**9)
        limits = {
            f"{scope}_{measure}": never
            for scope in ("RATE_LIMIT", "DOMAIN_RATE_LIMIT", "KEY_RATE_LIMIT")
            for measure in ("REQUESTS_PER_MINUTE", "TOKENS_PER_MINUTE", "CONCURRENT_STREAMS", "DAILY_USD")
        } | {"RUNAWAY_REQUESTS_PER_MINUTE": never}
        extra = {"proxy+ntf": notify, "proxy+lim": limits, "proxy+loop": {"RECORDER_PROCESS": "false"}}
        for target, records, key in (
            ("proxy", False, "idle_mb"),
            ("proxy+rec", True, "idle_rec_mb"),
            ("proxy+ntf", False, "idle_ntf_mb"),
            ("proxy+lim", False, "idle_lim_mb"),
            ("proxy+loop", True, "idle_loop_mb"),
        ):
            if target in targets:
                name = target.partition("+")[2] or "off"  # its home: proxy-off, proxy-rec, ...
                start = functools.partial(
                    upstreams.start_proxy, workdir, nginx.port, workers=args.workers, name=name, recording=records,
                    extra_env=extra.get(target),
                )  # fmt: skip
                proxies[target] = stack.enter_context(running(start))
                ports[target] = proxies[target].port
                results["rss"][key] = round(upstreams.tree_rss_mb(proxies[target].pid), 1)
                started.append(f"{target} on :{ports[target]} (idle RSS {results['rss'][key]} MB)")
        recording = [target for target in ("proxy+rec", "proxy+loop") if target in proxies]
        databases = {target: proxies[target].database_url() for target in recording}
        say(", ".join(started))
        say("\n" + report.RUN_HEADER)
        tags = itertools.count(1)
        for body, stream, concurrency in itertools.product(args.bodies, (False, True), args.concurrency):
            rounds: dict[str, list[dict[str, Any]]] = {target: [] for target in targets}
            for turn in range(args.rounds):
                # Each round starts with another target, so none always runs first (or last).
                for target in targets[turn % len(targets) :] + targets[: turn % len(targets)]:
                    run = {"target": target, "body": body, "stream": stream, "concurrency": concurrency}
                    run |= wrk_run(
                        args, ports[target], bodies[body, stream], stream=stream, concurrency=concurrency,
                        tag=f"bench_run={next(tags)}", database=databases.get(target),
                    )  # fmt: skip
                    rounds[target].append(run)
            for target in targets:
                results["runs"].append(median_run(rounds[target]))
                report.add_deltas(results["runs"])
                say(report.run_line(results["runs"][-1]))
        if "proxy+ntf" in proxies:
            results["notifications"] = notification_counts(ports["proxy+ntf"]) | {"slack_only": SLACK_ONLY}
        for target, key in (("proxy", "after_wrk_mb"), ("proxy+rec", "after_wrk_rec_mb")):
            if target in proxies:
                results["rss"][key] = round(upstreams.tree_rss_mb(proxies[target].pid), 1)


def notify_env(stack: contextlib.ExitStack, workdir: Path, started: list[str]) -> dict[str, str]:
    """proxy+ntf: recording off, Slack and the telemetry endpoint on. Their receivers stand for
    other machines: a second nginx in the CPU's idle time, so that answering thousands of
    POSTs a second is not charged to the proxy (it would be, on these two shared cores)."""
    receiver = stack.enter_context(running(lambda: upstreams.start_nginx(workdir, name="receiver", idle=True)))
    started.append(f"receiver nginx on :{receiver.port} (SCHED_IDLE)")
    env = {"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/services/T/B/bench"}
    if not SLACK_ONLY:
        env["TELEMETRY_ENDPOINT"] = f"http://127.0.0.1:{receiver.port}/services/telemetry"
    return env


def notification_counts(port: int) -> dict[str, Any]:
    """What the notify target's ``/health`` says was sent, failed and dropped over all its runs."""
    try:
        health = json.loads(upstreams.http_get(port, "/health"))
        return dict(health["checks"]["notifications"])
    except (OSError, ValueError, KeyError) as exc:
        return {"error": str(exc)}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median throughput among a target's rounds, with every round's figure, and
    the rows stored over all of them (a row lost in any round is a row lost)."""
    median = dict(sorted(runs, key=lambda run: run["rps"])[len(runs) // 2])
    if len(runs) > 1:
        median["rps_rounds"] = [run["rps"] for run in runs]
    checks = [run["recorded"] for run in runs if "recorded" in run]
    if checks:
        median["recorded"] = {
            **checks[0],
            **{key: sum(check[key] for check in checks) for key in ("stored", "sent", "completed")},
            "catch_up_s": max(check["catch_up_s"] for check in checks),
        }
    return median


def wrk_run(
    args: argparse.Namespace, port: int, body: Path, *, stream: bool, concurrency: int, tag: str, database: str | None
) -> dict[str, Any]:
    """A warm-up and a measured wrk run. Each has its own query string, so that with a
    ``database`` the exchanges it stored can be counted: then the recorder is waited for, so
    that nothing it still has to do is measured in the next run."""
    base = loads.STREAM_PATH if stream else loads.MESSAGES_PATH
    paths = [f"{base}&{tag}w", f"{base}&{tag}"]
    warmup = {"sent": 0, "requests": 0}
    after = pg.since()
    if args.warmup > 0:
        warmup = loads.run_wrk(port, paths[0], body, concurrency=concurrency, duration=args.warmup)
    run = loads.run_wrk(port, paths[1], body, concurrency=concurrency, duration=args.duration)
    if database is not None:
        run["recorded"] = pg.wait_for_rows(
            database, [path.partition("?")[2] for path in paths], after=after,
            sent=warmup["sent"] + run["sent"], completed=warmup["requests"] + run["requests"],
            timeout=args.drain_timeout,
        )  # fmt: skip
    return run


def stream_tests(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    hold_timeout = 120.0
    # The proxy runs with its defaults (an unbounded upstream pool), or with the
    # UPSTREAM_MAX_CONNECTIONS of the environment when one is set.
    extra_env: dict[str, str] = {}
    body = payloads.small_body(stream=True)
    start_upstream = lambda: upstreams.start_sse_upstream(workdir, delay_ms=20, hold_timeout=hold_timeout)  # noqa: E731
    with running(start_upstream) as upstream:
        start_proxy = lambda: upstreams.start_proxy(workdir, upstream.port, workers=args.workers, extra_env=extra_env)  # noqa: E731
        with running(start_proxy) as proxy:
            idle = round(upstreams.tree_rss_mb(proxy.pid), 1)
            say(f"\nasyncio SSE upstream on :{upstream.port}, proxy (recording on) on :{proxy.port} {extra_env or ''}")
            if "ttfb" in args.scenarios:
                say(f"time to first byte: {args.ttfb_requests} streams each, direct and through the proxy ...")
                targets = {"direct": upstream.port, "proxy": proxy.port}
                ttfb = asyncio.run(loads.measure_ttfb(targets, body, count=args.ttfb_requests, warmup=20))
                direct, through = ttfb["direct"]["ttfb_p50_ms"], ttfb["proxy"]["ttfb_p50_ms"]
                ttfb["added_p50_ms"] = None if direct is None or through is None else round(through - direct, 3)
                ttfb["requests"] = args.ttfb_requests
                ttfb["upstream_delay_ms"] = 20
                results["ttfb"] = ttfb
            if "rss" in args.scenarios:
                say(f"RSS: opening {args.streams} concurrent streams through the proxy ...")
                streams = asyncio.run(
                    loads.hold_streams(
                        proxy.port, upstream.port, body, count=args.streams,
                        rss=lambda: upstreams.tree_rss_mb(proxy.pid), wait_s=60,
                    )
                )  # fmt: skip
                streams["rss_idle_mb"] = idle
                streams["proxy_env"] = extra_env
                results["rss"]["streams"] = streams


def main() -> int:
    args = parse_args()
    _sigterm_interrupts()
    raise_open_files_limit()
    results: dict[str, Any] = {
        "machine": machine(),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "scenarios": args.scenarios,
            "workers": args.workers,
            "recorder_exchanges": args.recorder_exchanges,
            "link_conversations": args.link_conversations,
            "link_turns": args.link_turns,
            "link_live_rows": args.link_live_rows,
            "dashboard_requests": args.dashboard_requests,
            "dashboard_small": args.dashboard_small,
            "dashboard_samples": args.dashboard_samples,
            "rss_requests": args.rss_requests,
            "rss_concurrency": args.rss_concurrency,
            "drain_timeout_s": args.drain_timeout,
            "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        },
        "runs": [],
        "ttfb": None,
        "rss": {},
        "recorder": None,
        "rss100k": None,
        "storage": None,
        "linking": None,
        "dashboard": None,
        "goals": [],
    }
    say(
        f"claude-nexus load benchmark: {', '.join(args.scenarios)}; {args.duration} s per wrk run, "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} (median)"
    )
    failed = None
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if {"wrk", "recording", "notify", "limits", "recloop"} & set(args.scenarios):
                wrk_matrix(args, workdir, results)
            if {"ttfb", "rss"} & set(args.scenarios):
                stream_tests(args, workdir, results)
            if "recorder" in args.scenarios:
                results["recorder"] = recording.recorder_alone(args, workdir, say)
            if "rss100k" in args.scenarios:
                results["rss100k"] = recording.rss_over_requests(args, workdir, say)
            if "storage" in args.scenarios:
                results["storage"] = recording.storage_per_request(args, workdir, say)
            if "linking" in args.scenarios:
                results["linking"] = recording.linker_alone(args, workdir, say)
            if "dashboard" in args.scenarios:
                results["dashboard"] = recording.dashboard_pages(args, workdir, say)
        except KeyboardInterrupt:
            say("\ninterrupted; processes stopped, partial results follow")
            failed = "interrupted"
        except (upstreams.StartupError, RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
            say(f"\nbenchmark failed: {exc}")
            failed = str(exc)
        finally:
            for note in pg.stop_all_under(workdir):  # none should be left; if one is, say so
                say(f"  {note}")
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    if failed:
        results["error"] = failed
    results["goals"] = report.goals(results)
    say(report.render(results))
    report.write(results, args.output)
    say(f"\nresults written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
