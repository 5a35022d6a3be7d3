"""The dashboard served alone (``claude-nexus-proxy --role dashboard``, port 3001 by default)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dependency_injector import providers
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from nexus.entrypoints.dashboard.container import DashboardContainer
from nexus.entrypoints.dashboard.keys import resolve_keys
from nexus.entrypoints.dashboard.routes import dashboard_handlers, template_config
from nexus.entrypoints.http.api import api_router
from nexus.entrypoints.http.api.docs import docs_assets_router, openapi_config
from nexus.entrypoints.http.container_plugin import ContainerPlugin, resolve
from nexus.entrypoints.http.errors import http_exception_handler, unexpected_exception_handler
from nexus.entrypoints.http.health import HealthController
from nexus.entrypoints.read_container import read_dependencies
from nexus.entrypoints.settings import Settings

DASHBOARD_PORT = 3001


@get("/", include_in_schema=False)
async def to_dashboard() -> Redirect:
    return Redirect("/dashboard/", status_code=302)


def _watch_signals(container: DashboardContainer) -> Callable[[], Awaitable[None]]:
    async def watch() -> None:
        # Live streams end when the process starts shutting down, instead of holding it.
        (await resolve(container.lifecycle)).watch_signals()

    return watch


def create_dashboard_app(settings: Settings) -> Litestar:
    container = DashboardContainer(settings=settings)
    keys = resolve_keys(
        api_key=settings.management_api_key,
        session_secret=settings.dashboard_session_secret,
        data_dir=settings.nexus_data_dir,
        generate_key=settings.dashboard_generate_key,
    )
    return Litestar(
        route_handlers=[
            to_dashboard,
            HealthController,
            api_router(read_only=True),
            docs_assets_router(),
            *dashboard_handlers(keys, trust_forwarded=settings.trust_proxy_headers),
        ],
        plugins=[
            ContainerPlugin(
                container,
                dependencies={
                    "lifecycle": container.lifecycle,
                    "check_health": container.check_health,
                    "prompt_catalog": container.prompts.catalog,
                    "analyses": container.analysis.analyses,
                    "credential_store": container.credential_store,
                    "account_pool": providers.Object(None),  # the pools' state lives in the proxy processes
                    **read_dependencies(container.reads),
                },
                on_startup=[_watch_signals(container)],
            )
        ],
        state=State({"dashboard_api_key": keys.api_key, "thread_rule": settings.thread_rule}),
        template_config=template_config(),
        exception_handlers={HTTPException: http_exception_handler, Exception: unexpected_exception_handler},
        logging_config=None,
        openapi_config=openapi_config(),
    )
