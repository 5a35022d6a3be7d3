"""SLOW_QUERY_THRESHOLD_MS and DEBUG_SQL on a real PostgreSQL: statements named, never shown
with their parameters."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from tests.support.database import run_coroutine

pytestmark = pytest.mark.integration

SECRET = "sk-ant-api03-never-logged"
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
