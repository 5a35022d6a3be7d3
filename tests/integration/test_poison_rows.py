"""A bad row never costs good rows: values PostgreSQL text refuses are stored, a row the database
refuses is quarantined on its own, and neither is mistaken for an outage."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.db_errors import describe, is_unavailable, read_failure
from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.application.exchange import Exchange
from tests.support.database import query, request_body, response_raw, stop_postgres, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.processes import run_cli
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dash-key-for-poison-tests"
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
REFUSED_MODEL = "claude-refused-by-a-constraint"


def body(content: str = "hi", *, model: str = "claude-sonnet-5", stream: bool = False) -> bytes:
    return json.dumps(
        {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": content}]}
    ).encode()


def post(proxy: RunningProxy, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/messages", content=content, headers={**HEADERS, **headers}, timeout=30)


# -- what a database error means, asked of a real server ---------------------------------------


async def _failure(url: str, statements: list[str]) -> SQLAlchemyError:
    async with open_engine(url) as engine, engine.connect() as connection:
        # The table in a transaction of its own, so each case's statements open the next one
        # (SET TRANSACTION READ ONLY must come first in its transaction).
        await connection.execute(text("CREATE TEMP TABLE t (n int CHECK (n > 0), s text, j jsonb)"))
        await connection.commit()
        try:
            for statement in statements:
                await connection.execute(text(statement))
        except SQLAlchemyError as exc:
            return exc
    raise AssertionError(f"{statements!r} did not fail")


@pytest.mark.parametrize(
    ("statements", "code", "unavailable"),
    [
        (["INSERT INTO t (n) VALUES (-1)"], "23514", False),  # check violation: this row
        (["INSERT INTO t (s) VALUES (chr(0))"], "54000", False),  # a NUL in text: this row
        ([r"""INSERT INTO t (j) VALUES ('{"a": "\u0000"}')"""], "22P05", False),  # in jsonb: this row
        (["INSERT INTO t (n) VALUES (99999999999)"], "22003", False),  # out of range: this row
        (["INSERT INTO missing_table VALUES (1)"], "42P01", True),  # no schema: every row
        # A standby (PostgreSQL lets a read-only transaction write temporary tables, not others).
        (["SET TRANSACTION READ ONLY", "CREATE TABLE read_only_probe (n int)"], "25006", True),
    ],
)
def test_the_database_tells_a_refused_row_from_an_unusable_database(
    database_url: str, statements: list[str], code: str, unavailable: bool
) -> None:
    failure = asyncio.run(_failure(database_url, statements))
    assert is_unavailable(failure) is unavailable
    assert f"[{code}]: " in describe(failure)


def test_a_database_nobody_listens_on_is_unavailable_and_read_as_unreachable() -> None:
    async def connect() -> BaseException:
        try:
            async with open_engine("postgresql://nexus@127.0.0.1:9/nexus") as engine, engine.connect():
                pass
        except Exception as exc:
            return exc
        raise AssertionError("nothing listens on port 9")

    failure = asyncio.run(connect())
    assert is_unavailable(failure)
    assert (read_failure(failure) or "").startswith("the database cannot be reached (")


def test_the_value_a_statement_could_not_encode_is_never_repeated_in_the_reason(database_url: str) -> None:
    async def encode() -> BaseException:
        try:
            async with open_engine(database_url) as engine, engine.connect() as connection:
                await connection.execute(text("SELECT CAST(:v AS int)"), {"v": "my secret prompt"})
        except SQLAlchemyError as exc:
            return exc
        raise AssertionError("a string is no int")

    failure = asyncio.run(encode())
    assert not is_unavailable(failure)
    assert "my secret prompt" not in describe(failure)


# -- values PostgreSQL text refuses, through the proxy ----------------------------------------


@pytest.fixture
def stored_proxy(start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def exact_bytes(proxy: RunningProxy, request_id: str) -> tuple[bytes, bytes]:
    auth = {"x-api-key": KEY}
    sent = httpx.get(f"{proxy.url}/api/requests/{request_id}/request-body", headers=auth)
    answered = httpx.get(f"{proxy.url}/api/requests/{request_id}/stream", headers=auth)
    assert sent.status_code == answered.status_code == 200
    return sent.content, answered.content


def test_nul_characters_and_numbers_past_float_are_stored_with_the_exact_bytes(
    stored_proxy: RunningProxy, database_url: str
) -> None:
    sent = {
        "plain": body("before\u0000after"),
        "streamed": body("streamed\u0000nul", stream=True),
        "odd reply": body("odd reply"),
        "odd stream": body("odd stream", stream=True),
    }
    scenarios = {"odd reply": "odd_values", "odd stream": "odd_values"}
    answers = {
        name: post(stored_proxy, content, **({SCENARIO_HEADER: scenarios[name]} if name in scenarios else {}))
        for name, content in sent.items()
    }
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(sent, 200)
    assert b"1e400" in answers["odd reply"].content, "the client gets upstream's number as it was"

    rows = wait_for_rows(database_url, len(sent))
    by_id = {str(row["id"]): row for row in rows}
    for name, answer in answers.items():
        row = by_id[answer.headers["x-request-id"]]
        assert request_body(database_url, row) == sent[name], name
        assert response_raw(row) == answer.content, name
        assert exact_bytes(stored_proxy, str(row["id"])) == (sent[name], answer.content), name
        assert row["input_tokens"] is not None, f"{name}: usage was read"

    # The readable views hold U+FFFD where PostgreSQL text cannot hold a NUL.
    odd = by_id[answers["odd reply"].headers["x-request-id"]]
    detail = httpx.get(f"{stored_proxy.url}/api/requests/{odd['id']}", headers={"x-api-key": KEY}).json()
    assert "\x00" not in json.dumps(detail)
    assert query(database_url, "SELECT count(*) AS n FROM exchanges WHERE error IS NOT NULL") == [{"n": 0}]


def test_a_lone_surrogate_is_forwarded_and_upstream_answers_it(
    stored_proxy: RunningProxy, database_url: str, fake: FakeAnthropic
) -> None:
    # What Claude Code sends when it cuts a string inside an emoji; Anthropic answers 400.
    content = b'{"model":"claude-\\ud83d","max_tokens":16,"messages":[{"role":"user","content":"cut \\ud83d"}]}'
    answer = post(stored_proxy, content)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("The request body is not valid JSON: no low surrogate")
    assert fake.requests[-1].body == content, "forwarded byte for byte"

    (row,) = wait_for_rows(database_url, 1)
    assert str(row["id"]) == answer.headers["x-request-id"]
    assert row["model_requested"] == "claude-\ufffd"
    assert request_body(database_url, row) == content
    assert exact_bytes(stored_proxy, str(row["id"])) == (content, answer.content)


# -- a row the database refuses ---------------------------------------------------------------


def refuse_a_model(database_url: str) -> None:
    """A schema the proxy did not expect (a DBA's constraint, a column change in a later release)."""
    query(
        database_url,
        "ALTER TABLE exchanges ADD CONSTRAINT refuse_a_model"
        f" CHECK (model_requested IS DISTINCT FROM '{REFUSED_MODEL}')",
    )


def test_a_row_the_database_refuses_is_quarantined_and_its_batch_is_stored(
    stored_proxy: RunningProxy, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = post(stored_proxy, body("make the schema"))
    wait_for_rows(database_url, 1)
    refuse_a_model(database_url)

    caplog.set_level(logging.INFO)
    contents = [body(f"good {n}") for n in range(8)]
    contents.insert(4, body("refused", model=REFUSED_MODEL))
    with ThreadPoolExecutor(max_workers=9) as pool:  # together, so they share batches
        answers = list(pool.map(lambda content: post(stored_proxy, content), contents))
    assert [answer.status_code for answer in answers] == [200] * 9, "the client never notices"
    refused_id = answers[4].headers["x-request-id"]
    good_ids = {first.headers["x-request-id"]} | {a.headers["x-request-id"] for a in answers} - {refused_id}

    rows = wait_for_rows(database_url, 9)
    assert {str(row["id"]) for row in rows} == good_ids
    quarantined = tmp_path / "data" / "quarantine" / f"{refused_id}.quarantined"
    assert _eventually(quarantined.exists), "the refused exchange is kept on disk"
    assert DEFAULT_API_KEY.encode() not in quarantined.read_bytes(), "credentials are masked"

    database = httpx.get(f"{stored_proxy.url}/health").json()["checks"]["database"]
    assert database["status"] == "ok", "a refused row is no outage"
    assert database["quarantined"]["count"] == 1
    (latest,) = database["quarantined"]["latest"]
    assert latest["request_id"] == refused_id
    assert "CheckViolation" in latest["reason"]
    assert "refuse_a_model" in latest["reason"]
    assert REFUSED_MODEL not in latest["reason"], "no value of the row is repeated"

    messages = [record.getMessage() for record in caplog.records]
    assert any(f"Exchange {refused_id} is quarantined" in message for message in messages)
    assert not any("cannot be reached" in message or "unavailable" in message for message in messages)
    assert not any((tmp_path / "data" / "journal").glob("*.journal")), "nothing waits to be retried"


def test_quarantined_exchanges_are_listed_and_stored_by_retry_once_the_schema_is_fixed(
    stored_proxy: RunningProxy, database_url: str, tmp_path: Path
) -> None:
    assert post(stored_proxy, body("make the schema")).status_code == 200
    wait_for_rows(database_url, 1)
    refuse_a_model(database_url)
    sent = body("refused until the fix", model=REFUSED_MODEL)
    answer = post(stored_proxy, sent)
    refused_id = answer.headers["x-request-id"]
    assert _eventually((tmp_path / "data" / "quarantine" / f"{refused_id}.quarantined").exists)
    cli = {"STORAGE_ENABLED": "true", "DATABASE_URL": database_url, "NEXUS_DATA_DIR": str(tmp_path / "data")}

    listed = run_cli("quarantine", "list", cwd=tmp_path, env=cli)
    assert listed.returncode == 0, listed.stderr
    assert refused_id in listed.stdout
    assert "CheckViolationError [23514]" in listed.stdout

    again = run_cli("quarantine", "retry", cwd=tmp_path, env=cli)
    assert again.returncode == 1, "refused again while the constraint stands"
    assert "Stored 0 quarantined exchanges; 1 refused again." in again.stdout
    assert f"{refused_id}: the database refused its row: CheckViolationError" in again.stderr

    query(database_url, "ALTER TABLE exchanges DROP CONSTRAINT refuse_a_model")
    fixed = run_cli("quarantine", "retry", cwd=tmp_path, env=cli)
    assert fixed.returncode == 0, fixed.stderr
    assert "Stored 1 quarantined exchanges; 0 refused again." in fixed.stdout
    row = next(row for row in wait_for_rows(database_url, 2) if str(row["id"]) == refused_id)
    assert row["model_requested"] == REFUSED_MODEL
    assert request_body(database_url, row) == sent
    assert response_raw(row) == answer.content
    assert "Nothing is quarantined." in run_cli("quarantine", "list", cwd=tmp_path, env=cli).stdout
    assert run_cli("quarantine", "retry", cwd=tmp_path, env=cli).returncode == 0, "repeating is harmless"


def test_retry_against_a_database_that_is_away_says_so_and_keeps_the_quarantine(
    database_url: str, tmp_path: Path
) -> None:
    kept = FileQuarantine(tmp_path / "data" / "quarantine")
    kept.put(quarantined_exchange(), "the database refused its row: an earlier schema")
    cli = {
        "STORAGE_ENABLED": "true",
        "DATABASE_URL": "postgresql://nexus@127.0.0.1:9/nexus",
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
    }
    result = run_cli("quarantine", "retry", cwd=tmp_path, env=cli)
    assert result.returncode == 1
    assert "the database is unavailable (" in result.stderr
    assert "Traceback" not in result.stderr
    assert kept.count() == 1


def quarantined_exchange() -> Exchange:
    return Exchange(
        request_id=str(uuid.uuid4()),
        method="POST",
        path="/v1/messages",
        query_string=b"",
        domain="localhost",
        request_headers=[(b"content-type", b"application/json")],
        request_body=body("kept aside"),
        started_at_ms=int(time.time() * 1000),
        status=200,
    )


def _eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- poison values while the database is away --------------------------------------------------


def test_poison_values_sent_during_an_outage_are_stored_once_when_it_returns(
    fake: FakeAnthropic, own_postgres: Any, start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    url = own_postgres.get_uri()
    proxy = start_proxy(DATABASE_URL=url, NEXUS_DATA_DIR=str(tmp_path / "data"))
    assert post(proxy, body("warm up")).status_code == 200
    wait_for_rows(url, 1)

    stop_postgres(own_postgres)
    sent = [
        body("nul \u0000 while away"),
        body("nul \u0000 streamed while away", stream=True),
        b'{"model":"claude-\\ud83d","max_tokens":16,"messages":[{"role":"user","content":"\\udc00"}]}',
    ]
    answers = [post(proxy, content) for content in sent]
    answers.append(post(proxy, body("odd while away", stream=True), **{SCENARIO_HEADER: "odd_values"}))
    assert [answer.status_code for answer in answers] == [200, 200, 400, 200]
    assert any((tmp_path / "data" / "journal").glob("*")), "journaled while the database is away"

    own_postgres.ensure_postgres_running()
    rows = wait_for_rows(url, 5, timeout=40)
    assert sorted(str(row["id"]) for row in rows[1:]) == sorted(a.headers["x-request-id"] for a in answers)
    assert query(url, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM exchanges") == [{"n": 5, "d": 5}]
    by_id = {str(row["id"]): row for row in rows}
    for content, answer in zip(sent, answers, strict=False):
        row = by_id[answer.headers["x-request-id"]]
        assert request_body(url, row) == content
        assert response_raw(row) == answer.content
    assert not (tmp_path / "data" / "quarantine").exists() or not any((tmp_path / "data" / "quarantine").iterdir())
