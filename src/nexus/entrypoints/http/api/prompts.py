"""Management API routes: the MCP server's prompt files, and their sync from GitHub."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT
from litestar.types import ControllerRouterHandler

from nexus.application.ports.prompts import PromptEntry, SyncStatus
from nexus.application.prompt_catalog import PromptCatalog
from nexus.domain.prompts import PromptArgument
from nexus.entrypoints.http.api.params import API_SECURITY, api_errors, clear_validation_errors


class PromptView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    file: str
    valid: bool
    problem: str | None = None  # why an invalid file is not served
    description: str | None = None
    arguments: list[PromptArgument] = []
    template: str | None = None


class PromptList(msgspec.Struct, frozen=True, kw_only=True):
    mcp_enabled: bool  # whether /mcp serves them (MCP_ENABLED)
    prompts: list[PromptView]


class SyncView(msgspec.Struct, frozen=True, kw_only=True):
    configured: bool  # MCP_GITHUB_OWNER and MCP_GITHUB_REPO are set
    status: SyncStatus | None = None


def prompt_view(entry: PromptEntry) -> PromptView:
    prompt = entry.prompt
    if prompt is None:
        return PromptView(name=entry.name, file=entry.file, valid=False, problem=entry.problem)
    return PromptView(
        name=entry.name,
        file=entry.file,
        valid=True,
        description=prompt.description,
        arguments=prompt.arguments,
        template=prompt.template,
    )


class PromptsController(Controller):
    path = "/mcp"
    tags = ["prompts"]  # noqa: RUF012 -- Litestar declares it as a plain attribute
    security = API_SECURITY
    exception_handlers = {ValidationException: clear_validation_errors({})}  # noqa: RUF012 -- as above

    @get("/prompts", operation_id="ListPrompts", summary="The prompt files, valid or not, by name",
         responses=api_errors(400))  # fmt: skip
    async def list_prompts(
        self,
        prompt_catalog: NamedDependency[PromptCatalog],
        search: Annotated[
            str | None,
            QueryParameter(
                min_length=1, max_length=200, description="Case-insensitive text in name, file or description"
            ),
        ] = None,
    ) -> PromptList:
        """Every YAML file of ``MCP_PROMPTS_DIR``, read again if one changed; an invalid file
        says why it is not served."""
        entries = await prompt_catalog.entries(search)
        return PromptList(mcp_enabled=prompt_catalog.mcp_enabled, prompts=[prompt_view(entry) for entry in entries])

    @get("/prompts/{name:str}", operation_id="GetPrompt", summary="One prompt: its template and arguments",
         responses=api_errors(400, 404))  # fmt: skip
    async def get_prompt(
        self,
        prompt_catalog: NamedDependency[PromptCatalog],
        name: Annotated[str, PathParameter(description="The prompt's name (or an invalid file's base name)")],
    ) -> PromptView:
        entry = await prompt_catalog.entry(name)
        if entry is None:
            raise NotFoundException(f"No prompt is named {name!r}")
        return prompt_view(entry)

    @post("/sync", operation_id="SyncPrompts", summary="Sync the prompts from GitHub now", status_code=HTTP_200_OK,
          responses=api_errors(409))  # fmt: skip
    async def sync(self, prompt_catalog: NamedDependency[PromptCatalog]) -> SyncStatus:
        """Fetches the repository's prompt files if its head commit changed, and answers the
        outcome (``state: failed`` with the reason when GitHub refused or was unreachable)."""
        status = await prompt_catalog.sync_now()
        if status is None:
            raise ClientException(
                "GitHub sync is not configured: set MCP_GITHUB_OWNER and MCP_GITHUB_REPO", status_code=HTTP_409_CONFLICT
            )
        return status

    @get("/sync/status", operation_id="GetPromptSyncStatus", summary="The last sync from GitHub",
         responses=api_errors())  # fmt: skip
    async def sync_status(self, prompt_catalog: NamedDependency[PromptCatalog]) -> SyncView:
        status = await prompt_catalog.sync_status()
        return SyncView(configured=prompt_catalog.syncs, status=status)


PROMPT_HANDLERS: list[ControllerRouterHandler] = [PromptsController]
