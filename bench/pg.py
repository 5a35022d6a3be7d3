"""The embedded PostgreSQL servers of the benchmark: where they listen, what they hold, and
stopping any that their owner left running.

A recording proxy started with no ``DATABASE_URL`` runs its own server with the data (and the
Unix socket) in ``NEXUS_DATA_DIR/postgres``; the server detaches (``pg_ctl start``), so it is
not part of the proxy's process tree, and the proxy stops it when it exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

POSTMASTER_PID = "postmaster.pid"


@dataclass(frozen=True)
class Postmaster:
    pid: int
    url: str


def postmaster(pgdata: Path) -> Postmaster | None:
    """The running server of ``pgdata`` (from its ``postmaster.pid``), or None."""
    try:
        lines = (pgdata / POSTMASTER_PID).read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    port = lines[3].strip() or "5432"
    socket_dir = lines[4].strip()
    if socket_dir:
        url = f"postgresql://postgres@/postgres?host={quote(socket_dir, safe='/')}&port={port}"
    else:
        host = lines[5].strip() if len(lines) > 5 and lines[5].strip() not in ("", "*") else "127.0.0.1"
        url = f"postgresql://postgres@{host}:{port}/postgres"
    return Postmaster(pid, url) if _alive(pid, pgdata) else None


def _alive(pid: int, pgdata: Path) -> bool:
    """``pid`` is a live (not zombie) postgres process serving ``pgdata``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "?")
    return state not in ("Z", "X") and str(pgdata.resolve()) in cmdline


def stop_postgres(pgdata: Path, timeout: float = 20.0) -> str | None:
    """Stop the server of ``pgdata`` if it still runs; what had to be done, or None."""
    running = postmaster(pgdata)
    if running is None:
        return None
    # SIGINT: fast shutdown (sessions ended, a checkpoint, then exit); SIGQUIT: immediate.
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(running.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(running.pid, pgdata):
            time.sleep(0.05)
        if not _alive(running.pid, pgdata):
            return f"stopped the PostgreSQL server {running.pid} of {pgdata} ({sig.name})"
    return f"could not stop the PostgreSQL server {running.pid} of {pgdata}"


def stop_all_under(directory: Path) -> list[str]:
    """Stop every server whose data directory lies under ``directory`` (a last resort)."""
    return [note for pid_file in directory.glob(f"**/{POSTMASTER_PID}") if (note := stop_postgres(pid_file.parent))]


# --- queries --------------------------------------------------------------------------------


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql, *args))


def since(seconds_ago: float = 2.0) -> datetime:
    """A lower bound for the ``ts`` of exchanges about to be sent (``ts`` leads the primary
    key, so counting a run's rows reads only the rows since then, not the whole table)."""
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)


_RUN_ROWS = "FROM exchanges WHERE ts >= $1 AND query = ANY($2::text[])"


def count_rows(url: str, queries: Sequence[str], after: datetime) -> int:
    """Stored exchanges since ``after`` whose query string is one of ``queries`` (each wrk run
    has its own)."""
    rows = fetch(url, f"SELECT count(*) {_RUN_ROWS}", after, list(queries))
    return int(rows[0][0])


def count_pending_links(url: str) -> int:
    """Stored exchanges the linker has not linked yet."""
    return int(fetch(url, "SELECT count(*) FROM exchanges WHERE link_pending")[0][0])


def outcomes(url: str, queries: Sequence[str], after: datetime) -> dict[str, int]:
    """How those exchanges ended, as ``"<state> <status>": count``."""
    sql = f"SELECT state, status, count(*) {_RUN_ROWS} GROUP BY 1, 2 ORDER BY 3 DESC"
    return {f"{state} {status}": int(n) for state, status, n in fetch(url, sql, after, list(queries))}


def storage_bytes(url: str) -> dict[str, int]:
    """On-disk size (heap, TOAST, indexes) of ``exchanges`` (all partitions) and ``body_parts``."""
    sql = """
        SELECT pg_total_relation_size('exchanges')
               + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
                           WHERE inhparent = 'exchanges'::regclass), 0),
               pg_total_relation_size('body_parts'),
               (SELECT count(*) FROM body_parts)
    """
    exchanges, parts, part_rows = fetch(url, sql)[0]
    return {"exchanges": int(exchanges), "body_parts": int(parts), "body_part_rows": int(part_rows)}


def wait_for_rows(
    url: str,
    queries: Sequence[str],
    *,
    after: datetime,
    sent: int,
    completed: int,
    timeout: float,
    settle: float = 3.0,
) -> dict[str, Any]:
    """Wait (bounded) until the recorder has stored the exchanges of a wrk run.

    Every request wrk sent should be stored: those it got an answer to (``completed``) and those
    still in flight when it stopped, which the proxy finishes (or records as cancelled). It is
    done when ``sent`` rows are there, or when at least ``completed`` are and the count has not
    moved for ``settle`` seconds (a request cut off mid-body is never recorded), or on timeout.
    """
    started = time.monotonic()
    last_change = started
    stored = -1
    while True:
        now = time.monotonic()
        current = count_rows(url, queries, after)
        if current != stored:
            stored, last_change = current, now
        if stored >= sent or (stored >= completed and now - last_change >= settle) or now - started >= timeout:
            break
        time.sleep(0.25)
    # And the linker: its backlog would otherwise be worked off during the next target's run.
    while count_pending_links(url) and time.monotonic() - started < timeout:
        time.sleep(0.25)
    return {
        "sent": sent,
        "completed": completed,
        "stored": stored,
        "catch_up_s": round(last_change - started, 2),
        "linked_s": round(time.monotonic() - started, 2),
        "timed_out": stored < completed,
        "outcomes": outcomes(url, queries, after),
    }
