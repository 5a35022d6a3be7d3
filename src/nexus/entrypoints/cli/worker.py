"""``claude-nexus-proxy worker``: the AI analysis worker alone, beside proxies that only take
requests (several such workers may run: a job is never processed twice)."""

from __future__ import annotations

import asyncio
import signal

import click
import msgspec

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.migrate import upgrade
from nexus.adapters.system import SystemClock
from nexus.entrypoints.analysis_container import AnalysisWorkerContainer
from nexus.entrypoints.http.container_plugin import resolve
from nexus.entrypoints.read_container import ReadContainer
from nexus.entrypoints.settings import Settings
from nexus.entrypoints.storage_setup import resolve_storage


@click.command("worker")
@click.pass_context
def worker_command(ctx: click.Context) -> None:
    """Run the AI analysis worker (AI_ANALYZER, GEMINI_* or AI_ANALYSIS_CLAUDE_*) until stopped."""
    settings: Settings = msgspec.structs.replace(ctx.obj, ai_worker_enabled=True)
    if (problem := settings.analysis_worker_problem()) is not None:
        raise click.UsageError(problem)
    asyncio.run(_run(resolve_storage(settings)))


async def _run(settings: Settings) -> None:
    assert settings.database_url is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_engine(settings.database_url) as engine:
        await upgrade(engine)
        clock = SystemClock()
        reads = ReadContainer(engine=engine, credential_store=None, clock=clock)
        container = AnalysisWorkerContainer(settings=settings, store=reads.analysis_store, clock=clock)
        await resolve(container.worker)
        try:
            await stop.wait()
        finally:
            closed = container.shutdown_resources()
            if closed is not None:
                await closed
