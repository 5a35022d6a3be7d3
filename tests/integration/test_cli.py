"""The ``claude-nexus-proxy`` command, run as a user runs it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from nexus import __version__
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.processes import ProxyProcess, run_cli

pytestmark = pytest.mark.integration


def credential(directory: Path, name: str, document: dict[str, object]) -> Path:
    path = directory / f"{name}.credentials.json"
    path.write_text(json.dumps(document))
    return path


def test_version_and_help(tmp_path: Path) -> None:
    version = run_cli("-v", cwd=tmp_path)
    assert version.returncode == 0
    assert __version__ in version.stdout
    helped = run_cli("-h", cwd=tmp_path)
    assert helped.returncode == 0
    for option in ("-p, --port", "-H, --host", "-e, --env-file", "-v, --version", "credentials"):
        assert option in helped.stdout


def test_a_bad_setting_is_a_clear_usage_error(tmp_path: Path) -> None:
    result = run_cli("credentials", "list", cwd=tmp_path, env={"PORT": "http"})
    assert result.returncode == 2
    assert "PORT: Expected `int`" in result.stderr


def test_serving_reads_dotenv_and_flags_override_it(fake: FakeAnthropic, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"CLAUDE_API_BASE_URL={fake.url}\nCLAUDE_API_KEY=sk-ant-api03-test-key\nPORT=1\n")
    proxy = ProxyProcess(cwd=tmp_path, env={})  # -p on the command line wins over PORT=1
    try:
        proxy.wait_ready()
        response = httpx.post(
            f"{proxy.url}/v1/messages?beta=true",
            json={"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01"},
        )
    finally:
        output = proxy.stop()
    assert response.status_code == 200, output
    assert fake.last_request.header("x-api-key") == "sk-ant-api03-test-key"
    assert "sk-ant-api03-test-key" not in output


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"DASHBOARD_API_KEY": "k" * 20}, "sign in with the key in DASHBOARD_API_KEY"),
        ({"DASHBOARD_GENERATE_KEY": "true"}, "Dashboard key (generated now, kept in"),
        ({"NEXUS_ROLE": "dashboard", "INTERNAL_API_KEY": "k" * 20}, "sign in with the key in INTERNAL_API_KEY"),
        (
            {},
            "No dashboard key: set DASHBOARD_API_KEY, or DASHBOARD_GENERATE_KEY=true to have one generated and kept in",
        ),
    ],
)
def test_every_start_says_where_the_dashboard_key_is(
    fake: FakeAnthropic, tmp_path: Path, env: dict[str, str], said: str
) -> None:
    base = {"CLAUDE_API_BASE_URL": fake.url, "STORAGE_ENABLED": "false", "NEXUS_DATA_DIR": str(tmp_path / "data")}
    proxy = ProxyProcess(cwd=tmp_path, env={**base, **env})
    try:
        if env.get("NEXUS_ROLE") == "dashboard":
            _wait_dashboard(proxy)
        else:
            proxy.wait_ready()
    finally:
        output = proxy.stop()
    assert said in output
    assert "k" * 20 not in output
    if not env:
        assert f"kept in {tmp_path / 'data' / 'dashboard-api-key'}" in output, "where a generated key would be"
        assert f"the dashboard at http://127.0.0.1:{proxy.port}/dashboard/ only says how to set one" in output
        assert not (tmp_path / "data" / "dashboard-api-key").exists(), "no key is made unasked"
    if "NEXUS_ROLE" in env:
        assert "upstream" not in output, "the dashboard role never calls Anthropic"
    if "DASHBOARD_GENERATE_KEY" in env:
        second = ProxyProcess(cwd=tmp_path, env={**base, **env})
        try:
            second.wait_ready()
        finally:
            again = second.stop()
        assert f"sign in with the key kept in {tmp_path / 'data' / 'dashboard-api-key'}" in again


def _wait_dashboard(proxy: ProxyProcess) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{proxy.url}/dashboard/login", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the dashboard did not start")


def test_an_env_file_is_read_and_real_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "proxy.env"
    env_file.write_text("CREDENTIALS_DIR=from-file\n")
    (tmp_path / "from-file").mkdir()
    (tmp_path / "from-env").mkdir()
    credential(tmp_path / "from-file", "file.example", {"type": "api_key", "api_key": "sk-a"})
    credential(tmp_path / "from-env", "env.example", {"type": "api_key", "api_key": "sk-b"})
    from_file = run_cli("-e", str(env_file), "credentials", "list", cwd=tmp_path)
    assert "file.example" in from_file.stdout
    from_env = run_cli("-e", str(env_file), "credentials", "list", cwd=tmp_path, env={"CREDENTIALS_DIR": "from-env"})
    assert "env.example" in from_env.stdout


def test_list_shows_each_domain_without_secrets(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    directory.mkdir()
    expires = int(time.time() * 1000) + 3 * 3_600_000
    credential(
        directory,
        "team.example",
        {
            "type": "oauth",
            "accountId": "acc_team",
            "client_api_key": "cnp_live_secret",
            "oauth": {
                "accessToken": "sk-ant-oat01-secret",
                "refreshToken": "sk-ant-ort01-secret",
                "expiresAt": expires,
            },
        },
    )
    credential(directory, "localhost:3000", {"type": "api_key", "api_key": "sk-ant-api03-secret"})
    (directory / "broken.example.credentials.json").write_text("{")
    result = run_cli("credentials", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "TYPE", "ACCOUNT", "EXPIRES", "CLIENT", "KEY"]
    assert "broken.example" in lines[1]
    assert "invalid" in lines[1]
    assert lines[2].split()[:3] == ["localhost:3000", "api_key", "-"]
    assert lines[3].split()[:3] == ["team.example", "oauth", "acc_team"]
    assert "(in 2h59m)" in lines[3] or "(in 3h00m)" in lines[3]
    assert "required" in lines[3]
    assert "secret" not in result.stdout


def test_generate_client_key_writes_it_and_shows_it_once(fake: FakeAnthropic, tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    directory.mkdir()
    path = credential(
        directory, "team.example", {"type": "api_key", "api_key": "sk-ant-api03-test-key", "accountId": "a"}
    )
    missing = run_cli("credentials", "generate-client-key", "nobody.example", cwd=tmp_path)
    assert missing.returncode == 1
    assert "No credential file for nobody.example" in missing.stderr
    result = run_cli("credentials", "generate-client-key", "team.example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("cnp_live_")
    assert len(key) > 40
    document = json.loads(path.read_text())
    assert (document["client_api_key"], document["api_key"], document["accountId"]) == (
        key,
        "sk-ant-api03-test-key",
        "a",
    )
    again = run_cli("credentials", "generate-client-key", "team.example", cwd=tmp_path)
    assert again.returncode == 1
    assert "--force" in again.stderr
    replaced = run_cli("credentials", "generate-client-key", "team.example", "--force", cwd=tmp_path)
    assert replaced.returncode == 0
    assert json.loads(path.read_text())["client_api_key"] != key


def test_generate_client_key_refuses_a_path_for_a_domain(tmp_path: Path) -> None:
    result = run_cli("credentials", "generate-client-key", "../etc", cwd=tmp_path)
    assert result.returncode == 2
    assert "Malformed Host" in result.stderr


def test_import_claude_code_takes_its_login_and_keeps_local_fields(tmp_path: Path) -> None:
    claude_dir = tmp_path / "claude-config"
    claude_dir.mkdir()
    (claude_dir / ".credentials.json").write_text(
        json.dumps(
            {
                "claudeAiOauth": {
                    "accessToken": "sk-ant-oat01-cc",
                    "refreshToken": "sk-ant-ort01-cc",
                    "expiresAt": 1769753311584,
                    "scopes": ["user:inference", "user:profile"],
                    "subscriptionType": "max",
                }
            }
        )
    )
    directory = tmp_path / "credentials"
    directory.mkdir()
    path = credential(
        directory, "team.example", {"type": "api_key", "api_key": "sk-old", "client_api_key": "cnp_live_k"}
    )
    result = run_cli(
        "credentials", "import-claude-code", "team.example", cwd=tmp_path, env={"CLAUDE_CONFIG_DIR": str(claude_dir)}
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(path.read_text())
    assert document["type"] == "oauth"
    assert document["client_api_key"] == "cnp_live_k"
    assert document["oauth"] == {
        "accessToken": "sk-ant-oat01-cc",
        "refreshToken": "sk-ant-ort01-cc",
        "expiresAt": 1769753311584,
        "scopes": ["user:inference", "user:profile"],
        "isMax": True,
    }
    fresh = run_cli(
        "credentials",
        "import-claude-code",
        "new.example",
        "--account-id",
        "acc_new",
        "--from",
        str(claude_dir / ".credentials.json"),
        cwd=tmp_path,
    )
    assert fresh.returncode == 0, fresh.stderr
    created = directory / "new.example.credentials.json"
    assert json.loads(created.read_text())["accountId"] == "acc_new"
    assert (created.stat().st_mode & 0o077) == 0, "a new credential file is private to its owner"


def test_refresh_now_uses_the_token_endpoint_and_saves(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.refresh_tokens["sk-ant-ort01-cli"] = "sk-ant-oat01-old"
    directory = tmp_path / "credentials"
    directory.mkdir()
    path = credential(
        directory,
        "team.example",
        {
            "type": "oauth",
            "oauth": {"accessToken": "sk-ant-oat01-old", "refreshToken": "sk-ant-ort01-cli", "expiresAt": 1},
        },
    )
    env = {"CLAUDE_OAUTH_TOKEN_URL": f"{fake.url}/v1/oauth/token"}
    result = run_cli("credentials", "refresh", "team.example", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Refreshed team.example" in result.stdout
    assert json.loads(path.read_text())["oauth"]["accessToken"] != "sk-ant-oat01-old"
    assert len(fake.token_requests) == 1
    again = run_cli("credentials", "refresh", "team.example", cwd=tmp_path, env=env)
    assert len(fake.token_requests) == 2, "a forced refresh always asks"
    assert again.returncode == 0
    failed = run_cli(
        "credentials", "refresh", "team.example", cwd=tmp_path, env={**env, "CLAUDE_OAUTH_CLIENT_ID": "wrong"}
    )
    assert failed.returncode == 1
    assert "invalid_client" in failed.stderr


def test_credentials_commands_print_their_result_and_nothing_on_stderr(fake: FakeAnthropic, tmp_path: Path) -> None:
    """A one-off command says what it did on stdout; no JSON log lines, no storage warnings
    (storage is on here, with JSON logs, as a production environment file would have it)."""
    directory = tmp_path / "credentials"
    directory.mkdir()
    credential(directory, "team.example", {"type": "api_key", "api_key": "sk-ant-api03-test-key"})
    fake.refresh_tokens["sk-ant-ort01-quiet"] = "sk-ant-oat01-quiet"
    credential(
        directory,
        "oauth.example",
        {
            "type": "oauth",
            "oauth": {"accessToken": "sk-ant-oat01-quiet", "refreshToken": "sk-ant-ort01-quiet", "expiresAt": 1},
        },
    )
    claude_dir = tmp_path / "claude-config"
    claude_dir.mkdir()
    login = {"accessToken": "sk-ant-oat01-cc", "refreshToken": "sk-ant-ort01-cc", "expiresAt": 1769753311584}
    (claude_dir / ".credentials.json").write_text(json.dumps({"claudeAiOauth": login}))
    env = {
        "LOG_FORMAT": "json",
        "STORAGE_ENABLED": "true",
        "NEXUS_DATA_DIR": str(tmp_path / "data"),
        "CLAUDE_OAUTH_TOKEN_URL": f"{fake.url}/v1/oauth/token",
        "CLAUDE_CONFIG_DIR": str(claude_dir),
    }
    commands = {
        ("list",): "team.example",
        ("generate-client-key", "team.example"): "cnp_live_",
        ("import-claude-code", "new.example"): "new.example",
        ("refresh", "oauth.example"): "Refreshed oauth.example",
    }
    for args, said in commands.items():
        result = run_cli("credentials", *args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert said in result.stdout, (args, result.stdout)
        assert result.stderr == "", f"{args}: nothing but the result ({result.stderr!r})"
        assert not any(line.startswith("{") for line in result.stdout.splitlines()), f"{args}: no JSON log line"
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir()), "no database started for it"
