"""The prompt server's handlers on the SDK's low-level ``Server``: ``prompts/list`` (paged)
and ``prompts/get`` (rendered with the client's arguments)."""

from __future__ import annotations

from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import McpError

from nexus import __version__
from nexus.adapters.prompts.render import RenderFailed, render
from nexus.application.ports.prompts import PromptLibrary
from nexus.domain.prompts import Prompt, missing_arguments

PAGE_SIZE = 50


def build_server(library: PromptLibrary) -> Server:
    server: Server = Server("claude-nexus", version=__version__)

    @server.list_prompts()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves them untyped
    async def list_prompts(request: types.ListPromptsRequest) -> types.ListPromptsResult:
        await library.refresh()
        prompts = [entry.prompt for entry in library.entries() if entry.prompt is not None]
        cursor = request.params.cursor if request.params else None
        start = _offset(cursor)
        page = prompts[start : start + PAGE_SIZE]
        more = start + PAGE_SIZE < len(prompts)
        return types.ListPromptsResult(
            prompts=[_listed(prompt) for prompt in page], nextCursor=str(start + PAGE_SIZE) if more else None
        )

    @server.get_prompt()  # type: ignore[no-untyped-call, untyped-decorator]
    async def get_prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        await library.refresh()
        prompt = library.get(name)
        if prompt is None:
            raise _invalid(f"Unknown prompt: {name!r}")
        if missing := missing_arguments(prompt, arguments):
            raise _invalid(f"Missing required arguments for {name!r}: {', '.join(missing)}")
        try:
            text = render(prompt, arguments or {})
        except RenderFailed as exc:
            raise McpError(types.ErrorData(code=types.INTERNAL_ERROR, message=f"{name!r}: {exc}")) from None
        return types.GetPromptResult(
            description=prompt.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )

    return server


def _listed(prompt: Prompt) -> types.Prompt:
    return types.Prompt(
        name=prompt.name,
        description=prompt.description,
        arguments=[
            types.PromptArgument(name=argument.name, description=argument.description, required=argument.required)
            for argument in prompt.arguments
        ],
    )


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()):
        raise _invalid("Invalid cursor: pass the nextCursor of the previous page")
    return int(cursor)


def _invalid(message: str) -> McpError:
    return McpError(types.ErrorData(code=types.INVALID_PARAMS, message=message))
