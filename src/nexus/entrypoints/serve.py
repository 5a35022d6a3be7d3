"""Run the HTTP server."""

from __future__ import annotations

import logging

import uvicorn

from nexus import __version__
from nexus.entrypoints.http.app import create_app
from nexus.entrypoints.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    log.info(
        "claude-nexus %s listening on %s:%s, upstream %s",
        __version__,
        settings.host,
        settings.port,
        settings.claude_api_base_url,
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        # Upstream's own Server and Date headers pass through; ours would duplicate them.
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()
