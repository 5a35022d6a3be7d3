"""Bridge the dependency-injector container into Litestar.

Handlers never see the container: each provider is registered as a Litestar dependency by
name (``@inject``/``Provide[...]`` on handlers breaks Litestar's signature model), and the
container's resources open and close with the app's lifespan.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

from dependency_injector import containers, providers
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

T = TypeVar("T")


async def resolve(provider: Callable[[], T | Awaitable[T]]) -> T:
    """Call a provider; those built on an async resource return an awaitable."""
    value = provider()
    if inspect.isawaitable(value):
        return await value
    return value


def from_container(provider: providers.Provider[Any]) -> Provide:
    async def provide() -> Any:
        return await resolve(provider)

    return Provide(provide)


class ContainerPlugin(InitPluginProtocol):
    """Open the container's resources at startup, expose named providers, close on shutdown.

    ``on_startup`` callbacks run once the resources are open, to resolve what the raw proxy
    route needs exactly once rather than per request. ``within`` contexts (the MCP session
    manager) are entered after them and left before the resources close, in the lifespan task.
    """

    def __init__(
        self,
        container: containers.DeclarativeContainer,
        *,
        dependencies: dict[str, providers.Provider[Any]] | None = None,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
        within: list[Callable[[Litestar], AbstractAsyncContextManager[None]]] | None = None,
    ) -> None:
        self._container = container
        self._dependencies = dependencies or {}
        self._on_startup = on_startup or []
        self._within = within or []

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        for name, provider in self._dependencies.items():
            app_config.dependencies[name] = from_container(provider)
        app_config.lifespan.append(self._lifespan)
        app_config.state["container"] = self._container
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        opened = self._container.init_resources()
        if opened is not None:
            await opened
        try:
            for callback in self._on_startup:
                await callback()
            async with AsyncExitStack() as inner:
                for context in self._within:
                    await inner.enter_async_context(context(app))
                yield
        finally:
            # Composed containers first: their resources (the live feed) use the outer ones'
            # (the engine), and dependency-injector orders shutdowns only within one container.
            for composed in self._container.traverse(types=[providers.Container]):
                closed = composed.shutdown_resources()
                if closed is not None:
                    await closed
            closed = self._container.shutdown_resources()
            if closed is not None:
                await closed
            self._container.reset_singletons()
