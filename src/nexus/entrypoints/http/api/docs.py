"""OpenAPI for the management API and health routes: ``/docs`` (Swagger UI), ``/docs/redoc``
and ``/docs/openapi.json``.

The pages load Swagger UI and Redoc from ``/docs/assets``, files shipped by the
``drf-spectacular-sidecar`` package (its static files only; the Django app in it is never
imported), so the docs work without reaching any CDN.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from nexus import __version__

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
_ASSETS_PACKAGE = "drf_spectacular_sidecar"
_SWAGGER = f"{ASSETS_PATH}/swagger-ui-dist"
_FAVICON = f"<link rel='icon' type='image/png' href='{_SWAGGER}/favicon-32x32.png'>"

_DESCRIPTION = """\
Read what the proxy recorded. Every `/api` route needs `DASHBOARD_API_KEY` (or
`INTERNAL_API_KEY`), sent as `X-API-Key`, `X-Dashboard-Key` or `Authorization: Bearer`. Errors use Anthropic's format
(`{"type":"error","error":{"type":…,"message":…}}`); 503 when storage is off or the database
cannot be reached. Timestamps are ISO 8601 in UTC; costs are exact decimal strings in USD.
"""


def assets_directory() -> Path:
    """Where the installed package keeps its static files, found without importing it."""
    spec = importlib.util.find_spec(_ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{_ASSETS_PACKAGE} is not installed: the /docs pages need its files")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / _ASSETS_PACKAGE


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="claude-nexus management API",
        version=__version__,
        description=_DESCRIPTION,
        path=DOCS_PATH,
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header", description="DASHBOARD_API_KEY"
                ),
                "dashboardKey": SecurityScheme(
                    type="apiKey", name="X-Dashboard-Key", security_scheme_in="header", description="DASHBOARD_API_KEY"
                ),
                "bearer": SecurityScheme(type="http", scheme="bearer", description="DASHBOARD_API_KEY"),
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
                css_url=f"{_SWAGGER}/swagger-ui.css",
                standalone_preset_js_url=f"{_SWAGGER}/swagger-ui-standalone-preset.js",
                favicon=_FAVICON,
            ),
            RedocRenderPlugin(
                path="/redoc",
                js_url=f"{ASSETS_PATH}/redoc/bundles/redoc.standalone.js",
                google_fonts=False,
                favicon=_FAVICON,
            ),
            JsonRenderPlugin(path="/openapi.json"),
        ],
    )


def docs_assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[assets_directory()],
        name="docs-assets",
        cache_control=CacheControlHeader(max_age=86_400, public=True),
        include_in_schema=False,
    )
