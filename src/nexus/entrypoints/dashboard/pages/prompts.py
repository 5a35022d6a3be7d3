"""Prompts: the MCP server's prompt files (searchable, an invalid one with its problem), one
prompt's template and arguments, and the GitHub sync with a "Sync now" button."""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.prompt_catalog import PromptCatalog
from nexus.entrypoints.dashboard.context import page_context
from nexus.entrypoints.dashboard.params import MAX_PARAM, MAX_SEARCH, text

PAGE = "/dashboard/prompts"


@get("/prompts", name="dashboard-prompts")
async def prompts_page(
    *,
    dashboard_queries: NamedDependency[DashboardQueries],
    prompt_catalog: NamedDependency[PromptCatalog],
    search: Annotated[str | None, QueryParameter(description="Text in name, file or description")] = None,
    name: Annotated[str | None, QueryParameter(description="The prompt to show")] = None,
    synced: Annotated[str | None, QueryParameter(description="Set after Sync now")] = None,
    domain: Annotated[str | None, QueryParameter()] = None,
) -> Template:
    search = text(search, limit=MAX_SEARCH)
    name = text(name, limit=MAX_PARAM)
    entries = await prompt_catalog.entries(search)
    selected = await prompt_catalog.entry(name) if name else None
    context = await page_context(
        "prompts",
        dashboard_queries,
        domain=text(domain, limit=MAX_PARAM),
        search=search,
        entries=entries,
        invalid=sum(1 for entry in entries if entry.prompt is None),
        name=name,
        selected=selected,
        mcp_enabled=prompt_catalog.mcp_enabled,
        syncs=prompt_catalog.syncs,
        sync=await prompt_catalog.sync_status(),
        synced=synced is not None,
        page_url=PAGE,
    )
    return Template("prompts.html", context=context, status_code=404 if name and selected is None else 200)


@post("/prompts/sync", name="dashboard-prompts-sync")
async def sync_prompts(prompt_catalog: NamedDependency[PromptCatalog]) -> Redirect:
    """Sync, then show the page (POST, redirect, GET: a reload does not sync again)."""
    await prompt_catalog.sync_now()
    return Redirect(f"{PAGE}?synced=1", status_code=303)
