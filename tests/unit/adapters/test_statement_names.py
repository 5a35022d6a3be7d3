"""The short names SLOW_QUERY_THRESHOLD_MS and DEBUG_SQL log statements by: verb and table."""

from __future__ import annotations

import pytest

from nexus.adapters.persistence.statement_log import statement_name


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("INSERT INTO exchanges (id, ts) VALUES ($1, $2)", "INSERT exchanges"),
        ("  select * from body_parts where digest = any($1)", "SELECT body_parts"),
        ('UPDATE "conversations" SET title = $1', "UPDATE conversations"),
        ("CREATE TABLE IF NOT EXISTS usage_hourly (hour timestamptz)", "CREATE usage_hourly"),
        ("SELECT 1", "SELECT"),
        # A CTE's body has verbs, parentheses and ANDs of its own: the statement's verb is the
        # first one outside them, the table the first one read.
        (
            "WITH matches AS MATERIALIZED (SELECT id FROM exchanges WHERE (a) AND b AND (c))"
            " SELECT * FROM matches ORDER BY ts DESC LIMIT 20",
            "SELECT exchanges",
        ),
        ("WITH RECURSIVE", "WITH"),
    ],
)
def test_a_statement_is_named_by_its_own_verb_and_first_table(statement: str, name: str) -> None:
    assert statement_name(statement) == name
