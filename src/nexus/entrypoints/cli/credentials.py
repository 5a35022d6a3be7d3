"""``claude-nexus-proxy credentials ...``: what users of the original had as scripts."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import click

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.domain.credentials import CredentialFile
from nexus.domain.errors import InvalidRequest
from nexus.domain.host import parse_host
from nexus.entrypoints.cli.refresh import refresh_now
from nexus.entrypoints.settings import Settings

CLIENT_KEY_PREFIX = "cnp_live_"


def _store(ctx: click.Context) -> FileCredentialStore:
    settings: Settings = ctx.obj
    return FileCredentialStore(settings.credentials_dir)


def _file_name(domain: str) -> str:
    """The credential name for what the user typed, validated as a Host would be."""
    try:
        return parse_host(domain).authority
    except InvalidRequest as exc:
        raise click.BadParameter(exc.message, param_hint="DOMAIN") from None


@click.group()
def credentials() -> None:
    """Manage per-domain credential files (CREDENTIALS_DIR)."""


@credentials.command("list")
@click.pass_context
def list_credentials(ctx: click.Context) -> None:
    """Each domain with its type, account and expiry (never a secret)."""
    store = _store(ctx)
    entries = asyncio.run(store.list_all())
    if not entries:
        click.echo(f"No credential files in {store.directory}")
        return
    rows = [("DOMAIN", "TYPE", "ACCOUNT", "EXPIRES", "CLIENT KEY")]
    for entry in entries:
        if entry.credential is None:
            rows.append((entry.name, "invalid", "-", entry.problem or "", "-"))
        else:
            rows.append(_describe(entry.name, entry.credential))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _describe(name: str, credential: CredentialFile) -> tuple[str, str, str, str, str]:
    expires = "-"
    if credential.oauth is not None and credential.oauth.expires_at is not None:
        expires = _relative_expiry(credential.oauth.expires_at)
    client_key = "required" if credential.client_api_key else "-"
    return (name, credential.type, credential.account_id or "-", expires, client_key)


def _relative_expiry(expires_at_ms: int) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at_ms / 1000))
    minutes = round((expires_at_ms / 1000 - time.time()) / 60)
    span = f"{abs(minutes) // 60}h{abs(minutes) % 60:02d}m"
    return f"{stamp} ({'in ' + span if minutes >= 0 else 'expired ' + span + ' ago'})"


@credentials.command("generate-client-key")
@click.argument("domain")
@click.option("--force", is_flag=True, help="Replace an existing client key.")
@click.pass_context
def generate_client_key(ctx: click.Context, domain: str, force: bool) -> None:
    """Require clients of DOMAIN to present a new random key; prints it once."""
    store = _store(ctx)
    name = _file_name(domain)
    key = CLIENT_KEY_PREFIX + secrets.token_urlsafe(32)

    def change(document: dict[str, Any] | None) -> dict[str, Any]:
        if document is None:
            raise click.ClickException(f"No credential file for {name}: create or import one first")
        if document.get("client_api_key") and not force:
            raise click.ClickException(f"{name} already has a client key; pass --force to replace it")
        return {**document, "client_api_key": key}

    asyncio.run(store.update_document(name, change))
    click.echo(f"Client key for {name} (shown once; clients send it as x-api-key or Bearer):")
    click.echo(key)


@credentials.command("import-claude-code")
@click.argument("domain")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Claude Code's credentials file (default: $CLAUDE_CONFIG_DIR or ~/.claude, .credentials.json).",
)
@click.option("--account-id", help="Account id to record usage under (kept from the existing file otherwise).")
@click.pass_context
def import_claude_code(ctx: click.Context, domain: str, source: Path | None, account_id: str | None) -> None:
    """Use Claude Code's own OAuth login for DOMAIN."""
    store = _store(ctx)
    name = _file_name(domain)
    path = source or _claude_code_credentials_path()
    try:
        login = json.loads(path.read_text())["claudeAiOauth"]
        oauth = {
            "accessToken": login["accessToken"],
            "refreshToken": login.get("refreshToken"),
            "expiresAt": login.get("expiresAt"),
            "scopes": login.get("scopes") or [],
            "isMax": login.get("subscriptionType") == "max",
        }
    except (OSError, ValueError, KeyError, TypeError):
        raise click.ClickException(f"{path} holds no Claude Code login (claudeAiOauth.accessToken)") from None

    def change(document: dict[str, Any] | None) -> dict[str, Any]:
        merged = {**(document or {}), "type": "oauth", "oauth": oauth}
        if account_id:
            merged["accountId"] = account_id
        return merged

    asyncio.run(store.update_document(name, change))
    click.echo(f"Imported the Claude Code login from {path} for {name}")


def _claude_code_credentials_path() -> Path:
    base = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home() / ".claude")
    path = Path(base) / ".credentials.json"
    if not path.is_file():
        raise click.ClickException(f"{path} not found: log in with Claude Code first, or pass --from")
    return path


@credentials.command("refresh")
@click.argument("domain")
@click.pass_context
def refresh(ctx: click.Context, domain: str) -> None:
    """Refresh DOMAIN's OAuth token now (coordinated with running proxies)."""
    name = _file_name(domain)
    expires_at = asyncio.run(refresh_now(ctx.obj, name))
    click.echo(f"Refreshed {name}: valid until {_relative_expiry(expires_at)}")
