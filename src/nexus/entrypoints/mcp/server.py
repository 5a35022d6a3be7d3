"""The prompt server's handlers on the SDK's low-level ``Server``: ``prompts/list`` (paged)
and ``prompts/get`` (rendered with the client's arguments), and ``list_changed`` pushed to the
sessions that have asked for prompts."""

from __future__ import annotations

import logging
import weakref
from datetime import UTC, datetime
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.shared.exceptions import McpError

from nexus import __version__
from nexus.adapters.prompts.render import RenderFailed, render
from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.prompts import PromptLibrary, PromptUses
from nexus.application.ports.system import Clock
from nexus.domain.prompts import Prompt, missing_arguments, rendered_hash

PAGE_SIZE = 50

log = logging.getLogger(__name__)


class PromptServer(Server):
    """The SDK's server, announcing ``listChanged`` when it can push it (stateful sessions).

    The SDK keeps its sessions to itself, so a session is remembered when it lists or gets a
    prompt (a client that never asked has no list to refresh); weakly, so ended ones go.
    """

    def __init__(self, *, pushes_changes: bool) -> None:
        super().__init__("claude-nexus", version=__version__)
        self.pushes_changes = pushes_changes
        self._sessions: weakref.WeakSet[ServerSession] = weakref.WeakSet()

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(prompts_changed=self.pushes_changes)
        return super().create_initialization_options(options, experimental_capabilities)

    def remember_session(self) -> None:
        if self.pushes_changes:
            self._sessions.add(self.request_context.session)

    async def announce_list_changed(self) -> int:
        """``notifications/prompts/list_changed`` to every remembered session; how many got it."""
        told = 0
        for session in list(self._sessions):
            try:
                await session.send_prompt_list_changed()
                told += 1
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._sessions.discard(session)
        log.info("Prompts changed: told %d MCP session(s)", told)
        return told


def build_server(library: PromptLibrary, uses: PromptUses, clock: Clock, *, pushes_changes: bool) -> PromptServer:
    server = PromptServer(pushes_changes=pushes_changes)

    async def remember_use(text: str, name: str) -> None:
        """So a conversation can tell the prompt it started from; never at the cost of the answer."""
        try:
            await uses.record(rendered_hash(text), name, now=datetime.fromtimestamp(clock.now_ms() / 1000, UTC))
        except QueriesUnavailable as exc:
            log.warning("The use of prompt %r is not recorded: %s", name, exc)

    @server.list_prompts()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves them untyped
    async def list_prompts(request: types.ListPromptsRequest) -> types.ListPromptsResult:
        server.remember_session()
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
        server.remember_session()
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
        await remember_use(text, name)
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
