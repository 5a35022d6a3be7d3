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
GOAL_REC_RATIO = ("recording on / off, requests/s at c=32 (1 KB, non-streaming)", ">=", 90.0, "%")
GOAL_REC_RPS = ("requests/s, recording on, at c=32 (1 KB, non-streaming)", ">=", 2500.0, "req/s")
GOAL_REC_STORED = ("answered requests not stored, or stored beyond those sent", "<=", 0.0, "rows")
GOAL_RECORDER = ("recorder alone: 1 KB exchanges into embedded PostgreSQL", ">=", 5000.0, "exch/s")
# "No growth": what the allocator keeps between two samples of an idle process, a few MB.
GOAL_RSS_GROWTH = ("RSS growth over {n:,} requests with recording", "<=", 5.0, "MB")
GOAL_LINK_LATENCY = ("links visible after the row is stored, p99 (live linker)", "<=", 1000.0, "ms")
GOAL_LINK_REBUILD = ("late arrivals: links differing from an in-order rebuild", "<=", 0.0, "rows")
GOAL_DASH_P95 = ("dashboard: slowest page p95, {n:,} requests stored", "<=", 300.0, "ms")
GOAL_DASH_BOUNDED = ("dashboard: pages listing > 50 rows or growing with the data", "<=", 0.0, "pages")
DASH_P95_MS = GOAL_DASH_P95[2]


def find_run(runs: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    return next((run for run in runs if all(run[key] == value for key, value in match.items())), None)


def add_deltas(runs: list[dict[str, Any]]) -> None:
    """Give every proxy run the p50 it adds over the matching direct run."""
    for run in runs:
        if run["target"] == "direct":
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
    out += recording_goals(results)
    out += linking_goals(results.get("linking"))
    out += dashboard_goals(results.get("dashboard"))
    return out


def linking_goals(linking: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not linking:
        return [goal(GOAL_LINK_LATENCY, None), goal(GOAL_LINK_REBUILD, None)]
    live, late = linking["live"], linking["late"]
    wrong = sum(linking[part]["not_as_generated"] for part in ("backlog", "live", "late"))
    note = f"{wrong} links not as the traffic was generated" if wrong else None
    return [goal(GOAL_LINK_LATENCY, live["p99_ms"]), goal(GOAL_LINK_REBUILD, late["differ_from_rebuild"], note=note)]


def dashboard_goals(dashboard: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not dashboard:
        return [goal(GOAL_DASH_P95, None, n=100_000), goal(GOAL_DASH_BOUNDED, None)]
    pages = _present(dashboard["pages"])
    slowest = max((page["p95_ms"] for page in pages.values()), default=None)
    over = [name for name, page in pages.items() if page["p95_ms"] > DASH_P95_MS]
    failed = [name for name, page in pages.items() if page["status"] != 200]
    notes = [f"over: {', '.join(over)}"] if over else []
    notes += [f"failing: {', '.join(failed)}"] if failed else []
    bounded = dashboard["bounded"]
    unbounded = sorted(set(bounded["grows"]) | set(bounded["over_50_rows"]))
    return [
        goal(GOAL_DASH_P95, slowest, note="; ".join(notes) or None, n=dashboard["seeded"]["requests"]),
        goal(GOAL_DASH_BOUNDED, len(unbounded), note=", ".join(unbounded) or None),
    ]


def dashboard_ok(dashboard: dict[str, Any]) -> bool:
    return all(entry["met"] is not False for entry in dashboard_goals(dashboard))


def _present(pages: dict[str, Any]) -> dict[str, Any]:
    return {name: page for name, page in pages.items() if not page.get("missing")}


DASH_HEADER = (
    f"  {'page':<24}{'status':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'SQL ms':>8}{'stmts':>6}"
    f"{'bytes':>11}{'<tr':>6}{'table':>6}{'list':>6}"
)


def dashboard_page_line(name: str, page: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    if page.get("missing"):
        return f"  {name:<24}{'404':>7}  missing: {page['path']}"
    line = (
        f"  {name:<24}{page['status']!s:>7}{page['p50_ms']:>9.1f}{page['p95_ms']:>9.1f}{page['max_ms']:>9.1f}"
        f"{page.get('sql_ms', '-'):>8}{page.get('statements', '-'):>6}"
        f"{page['bytes']:>11,}{page['tr']:>6}{page['longest_table']:>6}{page['longest_list']:>6}"
    )
    if before and not before.get("missing"):
        line += (
            f"   | {before['p95_ms']:>6.1f} {before['bytes']:>9,} {before['longest_table']:>5}"
            f" {before['longest_list']:>4}"
        )
    if page["p95_ms"] > DASH_P95_MS:
        line += "  SLOW"
    if "error" in page:
        line += f"  {page['error'][:80]}"
    return line


def dashboard_lines(dashboard: dict[str, Any] | None) -> list[str]:
    """The pages of ``dashboard_load.py``: time, size and rows, and at the small seed."""
    if not dashboard:
        return []
    seeded, stages = dashboard["seeded"], dashboard["stages"]
    small = stages[0] if len(stages) > 1 else None
    targets = stages[-1]["targets"]
    lines = [
        "",
        f"dashboard: {seeded['requests']:,} requests stored ({seeded['conversations']:,} conversations, "
        f"{seeded['last_24h']:,} in the last 24 h, the biggest conversation {targets['conversation_requests']:,} "
        f"requests); {dashboard['samples']} sequential requests per page after {dashboard['warmup']} warm-up",
        f"  seeded in {sum(stage['seeded']['seconds'] for stage in stages):.0f} s; the dashboard "
        "(--role dashboard) on that database, signed in as a browser; load average "
        + " -> ".join(f"{value:.1f}" for value in stages[-1].get("loadavg", [])),
        DASH_HEADER + (f"   | at {small['seeded']['requests']:,}: p95, bytes, table, list" if small else ""),
    ]
    for name, page in dashboard["pages"].items():
        lines.append(dashboard_page_line(name, page, small["pages"].get(name) if small else None))
    missing = [name for name, page in dashboard["pages"].items() if page.get("missing")]
    if missing:
        lines.append(f"  missing (404, not built yet): {', '.join(missing)}")
    bounded = dashboard["bounded"]
    lines += [
        "  (SQL ms, stmts: the statements of one more request and their time in PostgreSQL; <tr: table rows of"
        " the page; table/list: rows of its longest table, items of its longest list)",
        f"  tables or lists over 50 rows: {', '.join(bounded['over_50_rows']) or 'none'}; growing with the data: "
        + (", ".join(bounded["grows"]) or "none" if small else "not compared (no small seed)"),
    ]
    return lines


def stored_check(recorded: dict[str, Any]) -> tuple[int, str]:
    """Rows wrong (answered but missing, or beyond what was sent) and a word on the count.

    wrk stops with up to one request per connection in flight: the proxy serves (or cancels)
    and records those too, so ``answered <= stored <= sent``, and ``stored == sent`` but for a
    request cut off mid-body.
    """
    stored, sent, completed = recorded["stored"], recorded["sent"], recorded["completed"]
    if stored < completed:
        return completed - stored, f"MISSING {completed - stored}"
    if stored > sent:
        return stored - sent, f"EXTRA {stored - sent}"
    return 0, "= sent" if stored == sent else f"ok, {sent - stored} cut off"


def _all_recorded(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [run["recorded"] for run in results["runs"] if "recorded" in run]
    if results.get("rss100k"):
        checks.append(results["rss100k"]["recorded"])
    if results.get("storage") and "database" in results["storage"]:
        checks.append(results["storage"]["database"]["recorded"])
    return checks


def recording_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = results["runs"]
    out = []
    key = {"body": "1kb", "stream": False, "concurrency": 32}
    off, on = find_run(runs, target="proxy", **key), find_run(runs, target="proxy+rec", **key)
    ratio = 100 * on["rps"] / off["rps"] if on and off and off["rps"] else None
    out.append(goal(GOAL_REC_RATIO, ratio, note=_errors_note(off, on)))
    out.append(goal(GOAL_REC_RPS, on["rps"] if on else None, note=_errors_note(on)))
    checks = _all_recorded(results)
    wrong = sum(stored_check(check)[0] for check in checks) if checks else None
    out.append(goal(GOAL_REC_STORED, wrong))
    recorder = results.get("recorder")
    if recorder:
        short = recorder["rows_expected"] - recorder["rows_in_table"]
        note = None
        if short or recorder["journaled"]:
            note = f"{recorder['rows_in_table']} rows of {recorder['rows_expected']}, {recorder['journaled']} journaled"
        out.append(goal(GOAL_RECORDER, recorder["exchanges_per_s"], note=note))
    else:
        out.append(goal(GOAL_RECORDER, None))
    rss = results.get("rss100k")
    if rss:
        notes = []
        if rss["errors"]:
            notes.append(f"{rss['errors']} failed requests")
        if rss["requests"] < rss["target_requests"]:
            notes.append(f"only {rss['requests']} requests")
        out.append(goal(GOAL_RSS_GROWTH, rss["growth_mb"], note="; ".join(notes) or None, n=rss["requests"]))
    else:
        out.append(goal(GOAL_RSS_GROWTH, None, n=100_000))
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def run_line(run: dict[str, Any]) -> str:
    errors = run["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    added = run.get("added_p50_ms")
    line = (
        f"{run['target']:<10}{run['body']:<7}{'yes' if run['stream'] else 'no':<7}{run['concurrency']:>4}"
        f"{_ms(run['p50_ms']):>10}{_ms(run['p99_ms']):>10}{run['rps']:>11,.0f}"
        f"{errors['non_2xx']:>9}{socket_errors:>9}{'' if added is None else f'{added:+.3f}':>11}"
    )
    if "rps_rounds" in run:
        line += "   rounds " + "/".join(f"{rps:,.0f}" for rps in run["rps_rounds"])
    if "recorded" in run:
        recorded = run["recorded"]
        line += f"   stored {recorded['stored']:,}/{recorded['sent']:,} sent ({stored_check(recorded)[1]})"
    return line


RUN_HEADER = (
    f"{'target':<10}{'body':<7}{'stream':<7}{'c':>4}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>11}"
    f"{'non-2xx':>9}{'sock err':>9}{'+p50 ms':>11}"
)

REC_HEADER = (
    f"{'body':<7}{'stream':<7}{'c':>4}{'off req/s':>11}{'on req/s':>10}{'on/off':>8}"
    f"{'sent':>9}{'answered':>10}{'stored':>9}{'catch-up s':>12}{'linked s':>10}  check"
)


def recording_lines(runs: list[dict[str, Any]], target: str = "proxy+rec") -> list[str]:
    """Recording on (``target``) against off, per body, stream and concurrency; the rows stored
    per run (warm-up included) against the requests wrk sent and got answers to."""
    lines = []
    for on in runs:
        if on["target"] != target:
            continue
        off = find_run(runs, target="proxy", body=on["body"], stream=on["stream"], concurrency=on["concurrency"])
        ratio = f"{100 * on['rps'] / off['rps']:.0f} %" if off and off["rps"] else "-"
        recorded = on.get("recorded")
        line = (
            f"{on['body']:<7}{'yes' if on['stream'] else 'no':<7}{on['concurrency']:>4}"
            f"{off['rps'] if off else 0:>11,.0f}{on['rps']:>10,.0f}{ratio:>8}"
        )
        if recorded:
            line += (
                f"{recorded['sent']:>9,}{recorded['completed']:>10,}{recorded['stored']:>9,}"
                f"{recorded['catch_up_s']:>12.1f}{recorded.get('linked_s', 0.0):>10.1f}  {stored_check(recorded)[1]}"
            )
        lines.append(line)
    return lines


def on_off_lines(runs: list[dict[str, Any]], target: str) -> list[str]:
    """A feature on (``target``: proxy+ntf, proxy+lim) against the plain proxy (recording off in both)."""
    lines = []
    for on in runs:
        if on["target"] != target:
            continue
        off = find_run(runs, target="proxy", body=on["body"], stream=on["stream"], concurrency=on["concurrency"])
        ratio = f"{100 * on['rps'] / off['rps']:.0f} %" if off and off["rps"] else "-"
        lines.append(
            f"{on['body']:<7}{'yes' if on['stream'] else 'no':<7}{on['concurrency']:>4}"
            f"{off['rps'] if off else 0:>11,.0f}{on['rps']:>10,.0f}{ratio:>8}"
            f"{_ms(off['p50_ms']) if off else '-':>10}{_ms(on['p50_ms']):>10}"
        )
    return lines


SLACK_COUNTS = ("sent", "failed", "dropped", "suppressed", "queued")


def notification_count_lines(counts: dict[str, Any]) -> list[str]:
    """The notify target's delivery counters over all its runs, from its ``/health``: Slack's
    beside its ``"slack": "on"``, the telemetry endpoint's under its own key (or "off")."""
    if "error" in counts:
        return [f"  delivery counts unavailable: {counts['error']}"]
    slack = counts.get("slack")
    if slack == "on":
        slack = ", ".join(f"{key} {counts[key]:,}" for key in SLACK_COUNTS if key in counts)
    telemetry = counts.get("telemetry_endpoint")
    if isinstance(telemetry, dict):
        telemetry = ", ".join(f"{key} {number:,}" for key, number in telemetry.items())
    return [f"  slack: {slack}", f"  telemetry endpoint: {telemetry}"]


NOTIFY_HEADER = (
    f"{'body':<7}{'stream':<7}{'c':>4}{'off req/s':>11}{'on req/s':>10}{'on/off':>8}{'off p50':>10}{'on p50':>10}"
)


def _wrk_tables(results: dict[str, Any]) -> list[str]:
    """The wrk runs, then each feature on against off."""
    lines: list[str] = []
    if results["runs"]:
        lines += ["", "wrk (one thread; latency per request)", RUN_HEADER, "-" * len(RUN_HEADER)]
        lines += [run_line(run) for run in results["runs"]]
        lines.append("  proxy: recording off (STORAGE_ENABLED=false)")
        lines.append("  proxy+rec: on, into its embedded PostgreSQL, by its recorder process (ADR 20)")
    recorded = recording_lines(results["runs"])
    if recorded:
        lines += ["", "recording on vs off; rows stored per run (warm-up included) against requests sent / answered"]
        lines += [REC_HEADER, "-" * len(REC_HEADER), *recorded]
    in_loop = recording_lines(results["runs"], "proxy+loop")
    if in_loop:
        lines += ["", "recording on the proxy's own event loop (proxy+loop: RECORDER_PROCESS=false) vs off"]
        lines += [REC_HEADER, "-" * len(REC_HEADER), *in_loop]
    notified = on_off_lines(results["runs"], "proxy+ntf")
    if notified:
        counts = results.get("notifications", {})
        what = "Slack webhook alone" if counts.get("slack_only") else "Slack webhook + telemetry endpoint"
        lines += ["", f"notifications on ({what}, answered by a second nginx in idle time) vs off"]
        lines += [NOTIFY_HEADER, "-" * len(NOTIFY_HEADER), *notified, *notification_count_lines(counts)]
    limited = on_off_lines(results["runs"], "proxy+lim")
    if limited:
        lines += ["", "traffic limits on (every scope and measure, and the runaway guard; none reached) vs off"]
        lines += [NOTIFY_HEADER, "-" * len(NOTIFY_HEADER), *limited]
    return lines


def render(results: dict[str, Any]) -> str:
    lines = _wrk_tables(results)
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
        labels = (
            ("idle, fresh (wrk proxy, recording off)", "idle_mb"),
            ("after the wrk runs", "after_wrk_mb"),
            ("idle, fresh (wrk proxy+rec)", "idle_rec_mb"),
            ("after the wrk runs (proxy+rec)", "after_wrk_rec_mb"),
        )
        for label, key in labels:
            if key in rss:
                lines.append(f"  {label:<40}{rss[key]:>8.1f}")
        streams = rss.get("streams")
        if streams:
            lines.append(f"  {'idle, fresh (streaming proxy)':<40}{streams['rss_idle_mb']:>8.1f}")
            lines.append(f"  {'before opening the streams':<40}{streams['rss_before_mb']:>8.1f}")
            label = f"{streams['requested']} streams open"
            lines.append(f"  {label:<40}{streams['rss_open_mb']:>8.1f}")
            lines.append(f"  {'peak during the stream test':<40}{streams['rss_peak_mb']:>8.1f}")
            lines.append(f"  {'after all streams ended':<40}{streams['rss_after_mb']:>8.1f}")
            lines.append(
                f"  streams: {streams['requested']} requested, {streams['opened']} open at once "
                f"(after {streams['open_seconds']} s), {streams['completed']} completed"
                + (f", failures {streams['failures']}" if streams["failures"] else "")
            )
    lines += _recorder_lines(results.get("recorder"))
    lines += _rss100k_lines(results.get("rss100k"))
    lines += linking_lines(results.get("linking"))
    lines += dashboard_lines(results.get("dashboard"))
    lines += _storage_lines(results.get("storage"))
    lines += ["", "goals (this 2-core class; load generator, upstream and proxy share it)"]
    for entry in results["goals"]:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[entry["met"]]
        value = "-" if entry["value"] is None else f"{entry['value']:,.3f}".rstrip("0").rstrip(".")
        line = f"  {verdict:<5} {entry['name']:<62}{entry['target']:>14}{value:>12} {entry['unit']}"
        lines.append(line + (f"  ({entry['note']})" if "note" in entry else ""))
    return "\n".join(lines)


def _recorder_lines(recorder: dict[str, Any] | None) -> list[str]:
    if not recorder:
        return []
    r = recorder
    return [
        "",
        f"recorder alone: {r['exchanges']:,} exchanges ({r['request_body_bytes']:,} B request, "
        f"{r['response_body_bytes']} B answer) into its embedded PostgreSQL; queue {r['queue_size']:,}, "
        f"batch {r['batch_size']}, after {r['warmup']:,} warm-up",
        f"  {r['exchanges_per_s']:>9,.0f} exchanges/s   ({r['seconds']:.2f} s until all were stored)",
        f"  building rows {r['build_rows_s']:.2f} s ({r['build_us_per_exchange']:.0f} us each), "
        f"storing {r['store_s']:.2f} s ({r['store_us_per_exchange']:.0f} us each, {r['batches']} batches), "
        f"other {r['other_s']:.2f} s",
        f"  CPU: recorder process {r['python_cpu_s']:.2f} s, PostgreSQL {r['postgres_cpu_s']} s; "
        f"rows in the table {r['rows_in_table']:,} of {r['rows_expected']:,}, journaled {r['journaled']}",
    ]


def linking_lines(linking: dict[str, Any] | None) -> list[str]:
    """The three parts of ``linker_load.py``: backlog, live latency, late arrivals."""
    if not linking:
        return []
    b, live, late = linking["backlog"], linking["live"], linking["late"]

    def latency(part: dict[str, Any]) -> str:
        figures = "/".join(
            "-" if part[key] is None else f"{part[key]:.0f}" for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
        )
        return (
            f"{part['rows']:,} rows stored 1-5 every 20 ms ({part['replay_s']:.1f} s); stored -> linked "
            f"p50/p95/p99/max {figures} ms, {part['over_1s']} over 1 s"
        )

    return [
        "",
        f"conversation linking: {linking['conversations']} conversations x {linking['turns']} turns + sub-agents, "
        f"{b['rows']:,} inference rows (mean request {b['request_bytes_mean']:,} B), one domain",
        f"  backlog   {b['rows_per_s']:>9,.0f} rows/s linked ({b['link_ms_per_row']:.2f} ms/row, {b['link_s']:.2f} s); "
        f"queue left {b['pending_after']}, {b['conversations']} conversations; {b['methods']}",
        f"            build_row {b['build_us_per_row']} us/row, "
        f"{b['build_us_per_row'] - b['facts_us_per_row']} without the facts "
        f"(facts_from_body {b['facts_us_per_row']} us, {b['facts_share_of_build_pct']} %); "
        f"store {b['store_us_per_row']} us/row",
        f"  live      {latency(live)}",
        f"  late      {latency(late)}; every 10th row 2 s late ({late['late_rows']} rows)",
        f"            re-queued {late['requeued']:,}, re-linked with a new link {late['changed']:,}, "
        f"links written {late['linked']:,} (re-links included)",
        f"            ROWS WHOSE LINKS DIFFER FROM AN IN-ORDER REBUILD: {late['differ_from_rebuild']} "
        f"(the rebuild took {late['rebuild_s']:.2f} s and changed {late['rebuild_changed']})",
        f"  links not as the traffic was generated: backlog {b['not_as_generated']}, live {live['not_as_generated']}, "
        f"late {late['not_as_generated']}",
    ]


def _rss100k_lines(rss: dict[str, Any] | None) -> list[str]:
    if not rss:
        return []
    recorded = rss["recorded"]
    samples = ", ".join(f"{s['requests'] / 1000:.0f}k {s['rss_mb']:.1f}" for s in rss["samples"])
    return [
        "",
        f"proxy memory over {rss['requests']:,} requests with recording (RSS of its process tree, MB; "
        f"wrk c={rss['concurrency']}, 1 KB; {rss['rps']:,.0f} req/s)",
        f"  {'fresh':<44}{rss['rss_fresh_mb']:>8.1f}",
        f"  {'start: after the warm-up, recorder caught up':<44}{rss['rss_start_mb']:>8.1f}",
        f"  {'end: as the last wrk run stopped':<44}{rss['rss_end_mb']:>8.1f}",
        f"  {'end: recorder caught up':<44}{rss['rss_end_settled_mb']:>8.1f}   ({rss['growth_mb']:+.1f} MB)",
        f"  after each wrk run: {samples}",
        f"  stored {recorded['stored']:,} of {recorded['sent']:,} sent, {recorded['completed']:,} answered "
        f"({stored_check(recorded)[1]}; caught up {recorded['catch_up_s']:.1f} s after wrk)",
    ]


def _storage_lines(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    r = result
    count = r["requests"]
    first, last = r["messages_first_last"]
    lines = [
        "",
        f"storage per request: {count} requests of one conversation ({r['fixture']}, {first}..{last} messages)",
        f"  {'raw bodies':<30}{r['raw_bytes_per_request']:>9,} B/request"
        f"   ({r['raw_bytes'] / 1e6:.1f} MB in all, the last {r['last_request_bytes']:,} B)",
        f"  {'stored (skeleton + parts)':<30}{r['stored_bytes_per_request']:>9,} B/request"
        f"   {100 * r['stored_ratio']:.2f} % of raw: skeletons {r['skeleton_bytes'] // count:,} B/request, "
        f"{r['distinct_parts']} distinct parts {r['compressed_part_bytes']:,} B compressed, once",
        f"  {'each body zlib-compressed':<30}{r['zlib_whole_bytes_per_request']:>9,} B/request"
        f"   {100 * r['zlib_whole_ratio']:.2f} % of raw (for comparison)",
    ]
    database = r.get("database")
    if database:
        lines.append(
            f"  {'database growth, via the proxy':<30}{database['bytes_per_request']:>9,} B/request"
            f"   {100 * database['ratio']:.2f} % of raw: exchanges {database['exchanges_bytes']:,} B "
            f"(rows, responses, indexes), body_parts {database['body_parts_bytes']:,} B "
            f"({database['body_part_rows']} rows); stored {database['recorded']['stored']} of {count}"
        )
    return lines


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
