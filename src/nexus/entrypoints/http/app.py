"""The Litestar application factory."""

from __future__ import annotations

import os
import uuid
from typing import Any

from litestar import Litestar, Response, asgi
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.plugins import PluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

from nexus.adapters.telemetry.otel import Telemetry
from nexus.entrypoints.container import Container, build_container
from nexus.entrypoints.dashboard.app import create_dashboard_app
from nexus.entrypoints.dashboard.keys import resolve_keys
from nexus.entrypoints.dashboard.routes import dashboard_handlers, template_config
from nexus.entrypoints.gc_tuning import tune_gc
from nexus.entrypoints.http.api import API_ROUTE_HANDLERS
from nexus.entrypoints.http.api.docs import docs_assets_router, openapi_config
from nexus.entrypoints.http.client_setup import client_setup_file
from nexus.entrypoints.http.container_plugin import ContainerPlugin, resolve
from nexus.entrypoints.http.errors import http_exception_handler, unexpected_exception_handler
from nexus.entrypoints.http.health import HealthController
from nexus.entrypoints.http.proxy_cors import ProxyCors
from nexus.entrypoints.http.proxy_endpoint import ProxyEndpoint
from nexus.entrypoints.http.proxy_first import PROXY_MOUNT, ProxyFirst
from nexus.entrypoints.http.side_calls import SIDE_CALL_HANDLERS
from nexus.entrypoints.logs import configure_logging
from nexus.entrypoints.mcp.route import McpRoute
from nexus.entrypoints.read_container import read_dependencies
from nexus.entrypoints.settings import Settings, load_settings


class _ProxyRoute:
    """Holds the proxy endpoint, built once the container's resources are open."""

    def __init__(self, container: Container, settings: Settings) -> None:
        self._container = container
        self._settings = settings
        self.endpoint: ProxyEndpoint | None = None
        self.cors = ProxyCors(settings.cors_origins)

    async def start(self) -> None:
        self.endpoint = ProxyEndpoint(
            forward=await resolve(self._container.forward_request),
            ids=await resolve(self._container.ids),
            clock=await resolve(self._container.clock),
            observer=await resolve(self._container.exchange_observer),
            max_request_size=self._settings.max_request_size,
            trust_proxy_headers=self._settings.trust_proxy_headers,
            write_ahead=await resolve(self._container.proxy_write_ahead),
        )

    async def serve(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.endpoint is not None, "the proxy route serves only inside the app's lifespan"
        if scope["method"] == "OPTIONS":
            await self.cors.preflight(scope, send)
            return
        if self.cors.active:
            send = self.cors.wrap(scope, send)
        await self.endpoint(scope, receive, send)

    def handler(self) -> Any:
        """The route inside Litestar: what the app's own tests (and a bare ``create_app``) use;
        ``served_app`` reaches ``serve`` without Litestar's router in between."""

        @asgi(PROXY_MOUNT, is_mount=True, copy_scope=False)
        async def proxy_v1(scope: Any, receive: Any, send: Any) -> None:
            await self.serve(scope, receive, send)

        return proxy_v1


async def _tune_gc() -> None:
    tune_gc()


def _watch_signals(container: Container) -> Any:
    async def watch() -> None:
        (await resolve(container.lifecycle)).watch_signals()

    return watch


async def _add_request_id(response: Response[Any]) -> Response[Any]:
    """Every response carries ``x-request-id``; the proxy route sets its own."""
    response.headers.setdefault("x-request-id", str(uuid.uuid4()))
    return response


def create_app(settings: Settings, container: Container | None = None) -> Litestar:
    """A fresh app with its own container (resources never outlive one app's lifespan).

    ``--role all`` (the default) serves the proxy and the dashboard, ``proxy`` only the proxy,
    ``dashboard`` only the dashboard (a process of its own, see ``create_dashboard_app``).
    """
    return _assemble(settings, container)[0]


def served_app(settings: Settings, container: Container | None = None) -> Any:
    """The ASGI app the server runs: ``create_app``'s, with ``/v1`` requests handed to the
    proxy route ahead of Litestar (``ProxyFirst``, ADR 21)."""
    app, proxy = _assemble(settings, container)
    return app if proxy is None else ProxyFirst(app, proxy.serve)


def _assemble(settings: Settings, container: Container | None) -> tuple[Litestar, _ProxyRoute | None]:
    if settings.nexus_role == "dashboard":
        return create_dashboard_app(settings), None
    container = container or build_container(settings)
    keys = resolve_keys(
        api_key=settings.management_api_key,
        session_secret=settings.dashboard_session_secret,
        data_dir=settings.nexus_data_dir,
        generate_key=settings.dashboard_generate_key,
    )
    dashboard = (
        dashboard_handlers(keys, trust_forwarded=settings.trust_proxy_headers) if settings.serves_dashboard else []
    )
    proxy = _ProxyRoute(container, settings)
    mcp = (
        McpRoute(
            catalog=container.prompts.catalog,
            uses=container.reads.prompt_uses,
            clock=container.clock(),
            sync_interval_s=settings.mcp_sync_interval,
            credentials=container.credential_store(),
            dashboard_key=keys.api_key,
            allowed_hosts=tuple(host.strip() for host in settings.mcp_allowed_hosts.split(",") if host.strip()),
            stateless=settings.workers > 1,
        )
        if settings.mcp_enabled
        else None
    )
    plugins: list[PluginProtocol] = [
        ContainerPlugin(
            container,
            dependencies={
                "check_health": container.check_health,
                "lifecycle": container.lifecycle,
                "token_accounting": container.token_accounting,
                "prompt_catalog": container.prompts.catalog,
                "analyses": container.analysis.analyses,
                "credential_store": container.credential_store,
                "keep_oauth_fresh": container.keep_oauth_fresh,
                "account_pool": container.account_pool,
                **read_dependencies(container.reads),
            },
            on_startup=[proxy.start, _watch_signals(container), _tune_gc],
            within=[mcp.lifespan] if mcp else [],
        )
    ]
    telemetry: Telemetry | None = container.telemetry()  # type: ignore[assignment]
    if telemetry is not None:
        # Litestar's middleware traces its own routes; the proxy route traces itself (ADR 0001).
        plugins.append(
            OpenTelemetryPlugin(
                OpenTelemetryConfig(
                    tracer_provider=telemetry.tracer_provider,
                    meter_provider=telemetry.meter_provider,
                    exclude=["^/v1"],
                    exclude_spans=["receive", "send"],
                )
            )
        )
    app = Litestar(
        route_handlers=[
            proxy.handler(),
            HealthController,
            *SIDE_CALL_HANDLERS,
            client_setup_file,
            *API_ROUTE_HANDLERS,
            docs_assets_router(),
            *dashboard,
            *([mcp.handler()] if mcp else []),
        ],
        state=State(
            {
                "dashboard_api_key": keys.api_key,
                "client_setup_dir": settings.client_setup_dir,
                "thread_rule": settings.thread_rule,
            }
        ),
        template_config=template_config() if dashboard else None,
        plugins=plugins,
        after_request=_add_request_id,
        exception_handlers={HTTPException: http_exception_handler, Exception: unexpected_exception_handler},
        openapi_config=openapi_config(),
        logging_config=None,
    )
    return app, proxy


def app_from_environment() -> Any:
    """The factory each worker process calls (``--workers N``): settings from its environment."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    return served_app(settings)
