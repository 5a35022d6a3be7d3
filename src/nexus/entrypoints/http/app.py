"""The Litestar application factory."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, asgi
from litestar.exceptions import HTTPException

from nexus.entrypoints.container import Container, build_container
from nexus.entrypoints.http.container_plugin import ContainerPlugin, resolve
from nexus.entrypoints.http.errors import http_exception_handler, unexpected_exception_handler
from nexus.entrypoints.http.proxy_endpoint import ProxyEndpoint
from nexus.entrypoints.http.side_calls import SIDE_CALL_HANDLERS
from nexus.entrypoints.settings import Settings


class _ProxyRoute:
    """Holds the proxy endpoint, built once the container's resources are open."""

    def __init__(self, container: Container, settings: Settings) -> None:
        self._container = container
        self._settings = settings
        self.endpoint: ProxyEndpoint | None = None

    async def start(self) -> None:
        self.endpoint = ProxyEndpoint(
            forward=await resolve(self._container.forward_request),
            ids=await resolve(self._container.ids),
            max_request_size=self._settings.max_request_size,
            trust_proxy_headers=self._settings.trust_proxy_headers,
        )

    def handler(self) -> Any:
        @asgi("/v1", is_mount=True, copy_scope=False)
        async def proxy_v1(scope: Any, receive: Any, send: Any) -> None:
            assert self.endpoint is not None, "the proxy route serves only inside the app's lifespan"
            await self.endpoint(scope, receive, send)

        return proxy_v1


def create_app(settings: Settings, container: Container | None = None) -> Litestar:
    """A fresh app with its own container (resources never outlive one app's lifespan)."""
    container = container or build_container(settings)
    proxy = _ProxyRoute(container, settings)
    return Litestar(
        route_handlers=[proxy.handler(), *SIDE_CALL_HANDLERS],
        plugins=[ContainerPlugin(container, on_startup=[proxy.start])],
        exception_handlers={HTTPException: http_exception_handler, Exception: unexpected_exception_handler},
        openapi_config=None,
        logging_config=None,
    )
