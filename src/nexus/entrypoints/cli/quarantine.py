"""``claude-nexus-proxy quarantine``: the exchanges the database refused, and another try."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.application.ports.exchange_store import StoreUnavailable
from nexus.application.recording.retry_quarantined import RetryOutcome, retry_quarantined
from nexus.entrypoints.settings import Settings
from nexus.entrypoints.storage_setup import resolve_storage


def _quarantine(settings: Settings) -> FileQuarantine:
    return FileQuarantine(Path(settings.nexus_data_dir) / "quarantine")


@click.group()
def quarantine() -> None:
    """Exchanges the database refused (kept in NEXUS_DATA_DIR/quarantine, credentials masked)."""


@quarantine.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Each quarantined exchange: when, its request id, and why the database refused it."""
    kept = _quarantine(ctx.obj)
    entries = kept.latest(kept.count())
    if not entries:
        click.echo("Nothing is quarantined.")
        return
    for entry in reversed(entries):
        click.echo(f"{entry.at.isoformat(timespec='seconds')}  {entry.request_id}  {entry.reason}")


@quarantine.command()
@click.pass_context
def retry(ctx: click.Context) -> None:
    """Store the quarantined exchanges now (after the upgrade or schema fix that lets the database
    take them). Safe while the proxy runs and safe to repeat; exits 1 if any are refused again."""
    settings: Settings = ctx.obj
    if not settings.storage_enabled:
        raise click.UsageError("storage is off (STORAGE_ENABLED=false): there is no database to store them in")
    try:
        outcome = asyncio.run(_retry(resolve_storage(settings)))
    except StoreUnavailable as exc:
        raise click.ClickException(f"the database is unavailable ({exc}); nothing more was tried") from None
    click.echo(f"Stored {outcome.stored} quarantined exchanges; {len(outcome.refused)} refused again.")
    for request_id, reason in outcome.refused.items():
        click.echo(f"  {request_id}: {reason}", err=True)
    if outcome.refused:
        ctx.exit(1)


async def _retry(settings: Settings) -> RetryOutcome:
    assert settings.database_url is not None
    # The store migrates the schema before its first write, and tells an outage from a refusal.
    async with open_engine(settings.database_url, pool_size=1) as engine:
        return await retry_quarantined(
            _quarantine(settings),
            SqlAlchemyExchangeStore(engine),
            store_bodies=settings.store_bodies,
            thread_rule=settings.thread_rule,
        )
