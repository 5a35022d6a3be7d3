"""``SLOW_QUERY_THRESHOLD_MS`` and ``DEBUG_SQL``: statements timed on the engine's cursor, and
logged by a short name (verb and table), never with their parameters or text."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("nexus.sql")

_VERB = re.compile(r"^\s*(\w+)")
# After ``WITH``: parentheses and the verbs that can follow a CTE list, to find the first verb
# outside every parenthesis (a CTE's body has verbs, ANDs and closing parentheses of its own).
_CTE_TOKEN = re.compile(r"\(|\)|\b(SELECT|INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE|JOIN)\s+(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([\w.\"]+)", re.I)
_STARTED = "nexus_statement_started"


def statement_name(statement: str) -> str:
    """``INSERT exchanges``, ``SELECT exchanges``: what ran, without anything it carried."""
    verb = _VERB.match(statement)
    name = verb.group(1).upper() if verb else "SQL"
    if name == "WITH":
        name = _verb_after_ctes(statement, verb.end() if verb else 0)
    table = _TABLE.search(statement)
    return f"{name} {table.group(1).strip(chr(34))}" if table else name


def _verb_after_ctes(statement: str, start: int) -> str:
    depth = 0
    for token in _CTE_TOKEN.finditer(statement, start):
        if token.group() == "(":
            depth += 1
        elif token.group() == ")":
            depth -= 1
        elif depth == 0:
            return token.group(1).upper()
    return "WITH"


def watch_statements(engine: AsyncEngine, *, slow_ms: int, log_all: bool) -> None:
    """Log statements slower than ``slow_ms`` (0: none) as warnings, and with ``log_all`` every
    statement with its duration."""
    if slow_ms <= 0 and not log_all:
        return

    # SQLAlchemy calls both with (conn, cursor, statement, parameters, context, executemany).
    def before(conn: Any, *_: Any) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        elapsed_ms = (time.perf_counter() - conn.info[_STARTED].pop()) * 1000
        slow = slow_ms > 0 and elapsed_ms >= slow_ms
        if not (slow or log_all):
            return  # the common case, on every statement: no naming (two regexes) for nothing
        name = statement_name(statement)
        rows = len(parameters) if rest[-1] and parameters is not None else 1  # the last: executemany
        if slow:
            log.warning(
                "Slow SQL: %s took %.0f ms (SLOW_QUERY_THRESHOLD_MS=%d)",
                name,
                elapsed_ms,
                slow_ms,
                extra={"statement": name, "duration_ms": round(elapsed_ms, 3), "rows": rows},
            )
        elif log_all:
            log.info(
                "SQL %s in %.2f ms",
                name,
                elapsed_ms,
                extra={"statement": name, "duration_ms": round(elapsed_ms, 3), "rows": rows},
            )

    def failed(exception_context: Any) -> None:
        connection = exception_context.connection
        if connection is not None and connection.info.get(_STARTED):
            connection.info[_STARTED].pop()

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    event.listen(engine.sync_engine, "handle_error", failed)
