"""Run the HTTP server."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from nexus import __version__
from nexus.entrypoints.http.app import create_app
from nexus.entrypoints.settings import Settings

log = logging.getLogger(__name__)


def server_config(settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn as the proxy runs it (the tests run the very same configuration)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        # Upstream's own Server and Date headers pass through; ours would duplicate them.
        "server_header": False,
        "date_header": False,
    }
    options.update(overrides)
    return uvicorn.Config(create_app(settings), **options)


def serve(settings: Settings) -> None:
    log.info(
        "claude-nexus %s listening on %s:%s, upstream %s",
        __version__,
        settings.host,
        settings.port,
        settings.claude_api_base_url,
    )
    uvicorn.Server(server_config(settings)).run()
