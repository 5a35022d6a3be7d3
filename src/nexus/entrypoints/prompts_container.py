"""The prompt folder and its repository sync, one container composed into both processes'
containers: the proxy's serves them over MCP and the API, the dashboard's shows them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from dependency_injector import containers, providers

from nexus.adapters.prompts.directory import DirectoryPrompts
from nexus.adapters.prompts.github_sync import GitHubFolder, GitHubPromptSync
from nexus.application.ports.system import Clock
from nexus.application.prompt_catalog import PromptCatalog
from nexus.entrypoints.settings import Settings

GITHUB_TIMEOUT_S = 30.0


async def _github_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient | None]:
    if not settings.github_sync_on:
        yield None
        return
    async with httpx.AsyncClient(timeout=GITHUB_TIMEOUT_S, follow_redirects=True) as client:
        yield client


def _sync(settings: Settings, client: httpx.AsyncClient | None, clock: Clock) -> GitHubPromptSync | None:
    if client is None or not (settings.mcp_github_owner and settings.mcp_github_repo):
        return None
    folder = GitHubFolder(
        owner=settings.mcp_github_owner,
        repo=settings.mcp_github_repo,
        branch=settings.mcp_github_branch,
        path=settings.mcp_github_path,
        token=settings.mcp_github_token,
        api_url=settings.mcp_github_api_url,
    )
    # Several workers share the folder: within half an interval of a round, the others skip.
    return GitHubPromptSync(
        folder=folder,
        directory=Path(settings.mcp_prompts_dir),
        client=client,
        clock=clock,
        min_gap_s=settings.mcp_sync_interval / 2,
    )


class PromptsContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()

    library = providers.Singleton(DirectoryPrompts, providers.Callable(Path, settings.provided.mcp_prompts_dir))
    github_client = providers.Resource(_github_client, settings)
    sync = providers.Singleton(_sync, settings, github_client, clock)
    catalog = providers.Singleton(PromptCatalog, library=library, sync=sync, mcp_enabled=settings.provided.mcp_enabled)
