"""The dashboard's routes, middleware and templates, for either app (``--role all`` or ``dashboard``)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, ControllerRouterHandler

from nexus.entrypoints.dashboard.auth import BASE, SESSION_HOURS, AuthController, require_login
from nexus.entrypoints.dashboard.formatting import TEMPLATE_GLOBALS
from nexus.entrypoints.dashboard.keys import DashboardKeys
from nexus.entrypoints.dashboard.pages.analysis_panel import analysis_fragment, request_analysis
from nexus.entrypoints.dashboard.pages.conversations import conversation_page, conversations_page
from nexus.entrypoints.dashboard.pages.live import live_events, live_page
from nexus.entrypoints.dashboard.pages.original_links import (
    original_conversation,
    original_conversation_messages,
    original_prompt,
    original_request,
    original_token_usage,
    original_usage_chart,
)
from nexus.entrypoints.dashboard.pages.overview import overview_page
from nexus.entrypoints.dashboard.pages.prompts import prompts_page, sync_prompts
from nexus.entrypoints.dashboard.pages.request_detail import request_page
from nexus.entrypoints.dashboard.pages.requests import requests_page
from nexus.entrypoints.dashboard.pages.usage import usage_page
from nexus.entrypoints.dashboard.pages.usage_export import usage_export
from nexus.entrypoints.dashboard.security import SecurityHeaders

HERE = Path(__file__).parent
SESSION_COOKIE = "nexus_dashboard"
CSRF_COOKIE = "nexus_csrf"
PAGE_HANDLERS: list[ControllerRouterHandler] = [
    overview_page,
    live_page,
    live_events,
    usage_page,
    usage_export,
    conversations_page,
    conversation_page,
    requests_page,
    request_page,
    prompts_page,
    sync_prompts,
    analysis_fragment,
    request_analysis,
    original_conversation,
    original_conversation_messages,
    original_request,
    original_token_usage,
    original_usage_chart,
    original_prompt,
]


def dashboard_handlers(keys: DashboardKeys, *, trust_forwarded: bool) -> list[ControllerRouterHandler]:
    """``/dashboard`` (pages behind the login, with sessions, CSRF and a strict CSP) and its
    static files (no session, no CSRF)."""
    session = CookieBackendConfig(
        secret=keys.session_secret,
        key=SESSION_COOKIE,
        path=BASE,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
    )
    csrf = CSRFConfig(
        secret=keys.session_secret.hex(),
        cookie_name=CSRF_COOKIE,
        cookie_path=BASE,
        cookie_samesite="strict",
        header_name="x-csrftoken",
    )
    pages = Router(path="/", route_handlers=PAGE_HANDLERS, before_request=require_login)
    return [
        Router(
            path=BASE,
            route_handlers=[AuthController, pages],
            middleware=[
                DefineMiddleware(SecurityHeaders, trust_forwarded=trust_forwarded),
                DefineMiddleware(_sessions, config=session),
                DefineMiddleware(CSRFMiddleware, config=csrf),
            ],
            include_in_schema=False,
        ),
        create_static_files_router(
            path=f"{BASE}/static", directories=[HERE / "static"], include_in_schema=False, name="dashboard-static"
        ),
    ]


def _sessions(app: ASGIApp, *, config: CookieBackendConfig) -> ASGIApp:
    """Litestar copies routers when it registers them, and the cookie backend's cipher cannot be
    copied: the session middleware is built from its (copyable) config when the app is."""
    defined = config.middleware
    return defined.middleware(app, *defined.args, **defined.kwargs)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The templates, with the formatters every page writes figures with as Jinja globals."""
    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_register_formatters
    )


def _register_formatters(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals.update(TEMPLATE_GLOBALS)
