"""SLOW_QUERY_THRESHOLD_MS and DEBUG_SQL on a real PostgreSQL: statements named, never shown
with their parameters."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from tests.support.database import InsertStall, query, run_coroutine, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.processes import ProxyProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SECRET = "sk-ant-api03-never-logged"
WAITING_ON_A_LOCK = "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
SLOW = text("SELECT pg_sleep(:seconds), :secret AS secret FROM pg_class LIMIT 1")


def run(url: str, statement: object, params: dict[str, object], **options: object) -> None:
    async def go() -> None:
        async with open_engine(url, **options) as engine, engine.connect() as connection:  # type: ignore[arg-type]
            await connection.execute(statement, params)  # type: ignore[arg-type]

    run_coroutine(go())


def test_a_statement_slower_than_the_threshold_is_a_warning_by_name(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="nexus.sql"):
        run(database_url, SLOW, {"seconds": 0.01, "secret": SECRET}, slow_query_ms=200)
        assert [r for r in caplog.records if r.name == "nexus.sql"] == [], "under the threshold: quiet"
        run(database_url, SLOW, {"seconds": 0.3, "secret": SECRET}, slow_query_ms=200)
    slow = [r for r in caplog.records if r.name == "nexus.sql"]
    assert len(slow) == 1
    assert slow[0].levelno == logging.WARNING
    assert slow[0].getMessage().startswith("Slow SQL: SELECT pg_class took ")
    assert slow[0].duration_ms >= 300  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert "pg_sleep" not in caplog.text


def test_debug_sql_logs_every_statement_without_parameters(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="nexus.sql"):
        run(database_url, SLOW, {"seconds": 0, "secret": SECRET}, debug_sql=True)
    logged = [r.getMessage() for r in caplog.records if r.name == "nexus.sql"]
    assert any(message.startswith("SQL SELECT pg_class in ") for message in logged), logged
    assert SECRET not in caplog.text


def test_a_failing_statement_leaves_the_timing_balanced(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with open_engine(database_url, debug_sql=True) as engine, engine.connect() as connection:
            with pytest.raises(Exception, match="no_such_table"):
                await connection.execute(text("SELECT * FROM no_such_table"))
            await connection.rollback()
            await connection.execute(text("SELECT 1"))

    with caplog.at_level(logging.INFO, logger="nexus.sql"):
        run_coroutine(go())
    assert any(r.getMessage().startswith("SQL SELECT in ") for r in caplog.records if r.name == "nexus.sql")


def test_the_running_proxy_names_its_slow_and_debug_statements_without_their_values(
    fake: FakeAnthropic, database_url: str, tmp_path: Path
) -> None:
    """DEBUG_SQL and SLOW_QUERY_THRESHOLD_MS as a user sets them: the stored exchange's
    statements are logged by name, the stalled one as slow, none with the values it wrote."""
    env = {
        "CLAUDE_API_BASE_URL": fake.url,
        "DATABASE_URL": database_url,
        "STORAGE_ENABLED": "true",
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
        "DEBUG_SQL": "true",
        "SLOW_QUERY_THRESHOLD_MS": "300",
        "LOG_FORMAT": "json",
    }
    stall = InsertStall(database_url)
    proxy = ProxyProcess(cwd=tmp_path, env=env).wait_ready(timeout=60)
    try:
        stall.start()  # the recorder's insert waits on the lock: slower than the threshold
        try:
            answered = httpx.post(
                f"{proxy.url}/v1/messages",
                json={"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": SECRET}]},
                headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
                timeout=30,
            )
            # Released once the recorder's insert has waited past the threshold, however late
            # the recorder's batch starts.
            wait_for(lambda: bool(query(database_url, WAITING_ON_A_LOCK)), timeout=20)
            time.sleep(0.5)
        finally:
            stall.release()
        assert answered.status_code == 200, answered.text
        assert len(wait_for_rows(database_url, 1)) == 1
    finally:
        output = proxy.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    sql = [line for line in lines if line.get("logger") == "nexus.sql"]
    assert sql, output[-2000:]
    slow = [line for line in sql if line["level"] == "WARNING"]
    assert any(line["statement"] == "INSERT exchanges" for line in slow), slow
    assert all(line["duration_ms"] >= 300 for line in slow)
    logged = {line["message"].split(" in ")[0] for line in sql if line["level"] == "INFO"}
    assert {"SQL INSERT body_parts", "SQL UPDATE exchanges"} <= logged, "DEBUG_SQL: the others too, by name"
    assert {key for line in sql for key in line} <= {
        "level",
        "logger",
        "message",
        "request_id",
        "timestamp",
        "statement",
        "duration_ms",
        "rows",
    }, "a name, a duration and a count: no parameters"
    assert SECRET not in output
    assert DEFAULT_API_KEY not in output
    assert "VALUES" not in "\n".join(line["message"] for line in sql), "no statement text"
