"""``claude-nexus-proxy rebuild-conversations``: re-link stored history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.linking import rebuild_conversations
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.linking.run import LinkCounts
from nexus.entrypoints.settings import Settings
from nexus.entrypoints.storage_setup import resolve_storage


@click.command("rebuild-conversations")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]),
    help="Re-link requests made from this date or time on (UTC unless an offset is given); default: all.",
)
@click.pass_context
def rebuild_conversations_command(ctx: click.Context, since: datetime | None) -> None:
    """Re-link stored requests into conversations, in order, as the live linker would.

    Safe to run while the proxy runs (the two take turns) and to run again: on correctly
    linked data nothing changes.
    """
    settings: Settings = ctx.obj
    if not settings.storage_enabled:
        raise click.UsageError("storage is off (STORAGE_ENABLED=false): there is nothing to re-link")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    counts = asyncio.run(_rebuild(resolve_storage(settings), since))
    click.echo(f"Re-linked {counts.linked} requests; {counts.changed} links changed.")


async def _rebuild(settings: Settings, since: datetime | None) -> LinkCounts:
    assert settings.database_url is not None
    async with open_engine(settings.database_url) as engine:
        await upgrade(engine)
        return await rebuild_conversations(engine, since=since, thread_rule=settings.thread_rule)
