"""``claude-nexus-proxy``: serves by default; subcommands manage the installation."""

from __future__ import annotations

import os
from pathlib import Path

import click
from dotenv import load_dotenv

from nexus import __version__
from nexus.entrypoints.cli.conversations import rebuild_conversations_command
from nexus.entrypoints.cli.credentials import credentials
from nexus.entrypoints.cli.quarantine import quarantine
from nexus.entrypoints.cli.worker import worker_command
from nexus.entrypoints.dashboard.app import DASHBOARD_PORT
from nexus.entrypoints.logs import configure_logging
from nexus.entrypoints.serve import serve
from nexus.entrypoints.settings import Settings, SettingsError, load_settings
from nexus.entrypoints.storage_setup import migrate_now, resolve_storage


def load_environment(env_file: Path | None) -> None:
    """Real environment variables win over ``--env-file``, which wins over ``./.env``."""
    if env_file is not None:
        load_dotenv(env_file, override=False)
    local = Path.cwd() / ".env"
    if local.is_file():
        load_dotenv(local, override=False)


def _is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--port", type=int, help="Port to listen on (env PORT; default 3000).")
@click.option("-H", "--host", help="Address to listen on (env HOST; default 0.0.0.0).")
@click.option("-w", "--workers", type=int, help="Serve with N processes on one port (env WORKERS; default 1).")
@click.option(
    "--role",
    type=click.Choice(["all", "proxy", "dashboard"]),
    help="What to serve (env NEXUS_ROLE): all (default), the proxy only, or the dashboard only (port 3001).",
)
@click.option(
    "-e",
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read environment variables from FILE (a .env in the working directory is read too).",
)
@click.version_option(__version__, "-v", "--version", prog_name="claude-nexus-proxy")
@click.pass_context
def main(
    ctx: click.Context,
    *,
    port: int | None,
    host: str | None,
    workers: int | None,
    role: str | None,
    env_file: Path | None,
) -> None:
    """claude-nexus: a transparent proxy for the Anthropic API. With no command, it serves."""
    load_environment(env_file)
    role = role or os.environ.get("NEXUS_ROLE") or None
    if role == "dashboard" and port is None and not os.environ.get("PORT", "").strip():
        port = DASHBOARD_PORT
    try:
        settings = load_settings(os.environ, port=port, host=host, workers=workers, nexus_role=role)
    except SettingsError as exc:
        raise click.UsageError(f"invalid setting {exc}") from None
    if ctx.invoked_subcommand in (None, "worker"):
        configure_logging(settings.log_level, settings.log_format)
    else:
        # A one-off command prints its result; only its problems are logged, as plain text,
        # unless LOG_LEVEL / LOG_FORMAT ask otherwise.
        configure_logging(
            settings.log_level if _is_set("LOG_LEVEL") else "WARNING",
            settings.log_format if _is_set("LOG_FORMAT") else "text",
        )
    ctx.obj = settings
    if ctx.invoked_subcommand is None:
        serve(settings)


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema to the latest revision (the proxy also does so on start)."""
    settings: Settings = ctx.obj
    if not settings.storage_enabled:
        raise click.UsageError("storage is off (STORAGE_ENABLED=false): there is no database to migrate")
    migrate_now(resolve_storage(settings))
    click.echo("Database schema is up to date")


main.add_command(credentials)
main.add_command(rebuild_conversations_command)
main.add_command(quarantine)
main.add_command(worker_command)
