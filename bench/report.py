"""Goals, the printed tables and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (name, comparison, target, unit)
GOAL_ADDED_P50 = ("added p50 latency at c=1 (1 KB, non-streaming)", "<=", 0.5, "ms")
GOAL_RPS = ("requests/s through the proxy at c=32 (1 KB, non-streaming)", ">=", 2500.0, "req/s")
GOAL_TTFB = ("added time to first byte for streams (p50)", "<=", 1.0, "ms")
GOAL_RSS = ("proxy RSS with {n} concurrent open streams", "<=", 250.0, "MB")


def find_run(runs: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    return next((run for run in runs if all(run[key] == value for key, value in match.items())), None)


def add_deltas(runs: list[dict[str, Any]]) -> None:
    """Give every proxy run the p50 it adds over the matching direct run."""
    for run in runs:
        if run["target"] != "proxy":
            continue
        direct = find_run(runs, target="direct", body=run["body"], stream=run["stream"], concurrency=run["concurrency"])
        run["added_p50_ms"] = round(run["p50_ms"] - direct["p50_ms"], 3) if direct else None


Spec = tuple[str, str, float, str]


def goal(spec: Spec, value: float | None, *, note: str | None = None, **fmt: Any) -> dict[str, Any]:
    name, comparison, target, unit = spec
    met = None if value is None else (value <= target if comparison == "<=" else value >= target)
    if note is not None and met:
        met = False  # a number measured while requests failed does not count
    entry: dict[str, Any] = {
        "name": name.format(**fmt),
        "target": f"{comparison} {target:g} {unit}",
        "value": None if value is None else round(value, 3),
        "unit": unit,
        "met": met,
    }
    if note is not None:
        entry["note"] = note
    return entry


def _errors_note(*runs: dict[str, Any] | None) -> str | None:
    total = sum(run["errors"]["total"] for run in runs if run is not None)
    return f"{total} failed requests in the measured runs" if total else None


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = results["runs"]
    out = []
    key = {"body": "1kb", "stream": False}
    direct_c1 = find_run(runs, target="direct", concurrency=1, **key)
    proxy_c1 = find_run(runs, target="proxy", concurrency=1, **key)
    added = proxy_c1["p50_ms"] - direct_c1["p50_ms"] if proxy_c1 and direct_c1 else None
    out.append(goal(GOAL_ADDED_P50, added, note=_errors_note(direct_c1, proxy_c1)))
    proxy_c32 = find_run(runs, target="proxy", concurrency=32, **key)
    out.append(goal(GOAL_RPS, proxy_c32["rps"] if proxy_c32 else None, note=_errors_note(proxy_c32)))
    ttfb = results.get("ttfb")
    if ttfb:
        failed = ttfb["direct"]["errors"] + ttfb["proxy"]["errors"]
        out.append(goal(GOAL_TTFB, ttfb.get("added_p50_ms"), note=f"{failed} failed streams" if failed else None))
    else:
        out.append(goal(GOAL_TTFB, None))
    streams = results.get("rss", {}).get("streams")
    if streams:
        short = streams["requested"] - min(streams["opened"], streams["completed"])
        note = f"only {streams['opened']} opened, {streams['completed']} completed" if short else None
        out.append(goal(GOAL_RSS, streams["rss_open_mb"], note=note, n=streams["requested"]))
    else:
        out.append(goal(GOAL_RSS, None, n=1000))
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def run_line(run: dict[str, Any]) -> str:
    errors = run["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    added = run.get("added_p50_ms")
    return (
        f"{run['target']:<7}{run['body']:<7}{'yes' if run['stream'] else 'no':<7}{run['concurrency']:>4}"
        f"{_ms(run['p50_ms']):>10}{_ms(run['p99_ms']):>10}{run['rps']:>11,.0f}"
        f"{errors['non_2xx']:>9}{socket_errors:>9}{'' if added is None else f'{added:+.3f}':>11}"
    )


RUN_HEADER = (
    f"{'target':<7}{'body':<7}{'stream':<7}{'c':>4}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>11}"
    f"{'non-2xx':>9}{'sock err':>9}{'+p50 ms':>11}"
)


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if results["runs"]:
        lines += ["", "wrk (one thread; latency per request)", RUN_HEADER, "-" * len(RUN_HEADER)]
        lines += [run_line(run) for run in results["runs"]]
    ttfb = results.get("ttfb")
    if ttfb:
        title = f"time to first byte of streams, c=1, {ttfb['requests']} each; upstream sends the first event at once"
        lines += ["", title]
        lines.append(f"{'target':<8}{'ttfb p50':>10}{'ttfb p99':>10}{'total p50':>11}{'errors':>8}")
        for name in ("direct", "proxy"):
            row = ttfb[name]
            lines.append(
                f"{name:<8}{_ms(row['ttfb_p50_ms']):>10}{_ms(row['ttfb_p99_ms']):>10}"
                f"{_ms(row['total_p50_ms']):>11}{row['errors']:>8}"
            )
    rss = results.get("rss", {})
    if rss:
        lines += ["", "proxy memory (RSS of its process tree, MB)"]
        for label, key in (("idle, fresh (wrk proxy)", "idle_mb"), ("after the wrk runs", "after_wrk_mb")):
            if key in rss:
                lines.append(f"  {label:<34}{rss[key]:>8.1f}")
        streams = rss.get("streams")
        if streams:
            lines.append(f"  {'idle, fresh (streaming proxy)':<34}{streams['rss_idle_mb']:>8.1f}")
            lines.append(f"  {'before opening the streams':<34}{streams['rss_before_mb']:>8.1f}")
            label = f"{streams['requested']} streams open"
            lines.append(f"  {label:<34}{streams['rss_open_mb']:>8.1f}")
            lines.append(f"  {'peak during the stream test':<34}{streams['rss_peak_mb']:>8.1f}")
            lines.append(f"  {'after all streams ended':<34}{streams['rss_after_mb']:>8.1f}")
            lines.append(
                f"  streams: {streams['requested']} requested, {streams['opened']} open at once "
                f"(after {streams['open_seconds']} s), {streams['completed']} completed"
                + (f", failures {streams['failures']}" if streams["failures"] else "")
            )
    lines += ["", "goals (this 2-core class; load generator, upstream and proxy share it)"]
    for entry in results["goals"]:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[entry["met"]]
        value = "-" if entry["value"] is None else f"{entry['value']:,.3f}".rstrip("0").rstrip(".")
        line = f"  {verdict:<5} {entry['name']:<62}{entry['target']:>14}{value:>12} {entry['unit']}"
        lines.append(line + (f"  ({entry['note']})" if "note" in entry else ""))
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
