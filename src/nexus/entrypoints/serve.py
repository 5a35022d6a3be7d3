"""Run the HTTP server: one process, or ``--workers N`` processes sharing one socket."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from nexus import __version__
from nexus.entrypoints.dashboard.keys import KEY_FILE, resolve_keys
from nexus.entrypoints.http.app import served_app
from nexus.entrypoints.settings import Settings
from nexus.entrypoints.startup_notes import startup_warnings
from nexus.entrypoints.storage_setup import resolve_storage

log = logging.getLogger(__name__)
WORKER_APP_FACTORY = "nexus.entrypoints.http.app:app_from_environment"


def server_config(settings: Settings, app: Any = None, **overrides: Any) -> uvicorn.Config:
    """uvicorn as the proxy runs it (the tests run the very same configuration).

    On SIGTERM uvicorn stops accepting, lets in-flight requests (streams included) finish for
    up to ``SHUTDOWN_DRAIN_SECONDS``, then runs the app's shutdown, which flushes telemetry.
    """
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        # Client addresses from X-Forwarded-For are not used; skip uvicorn's rewrite per request.
        "proxy_headers": False,
        # Upstream's own Server and Date headers pass through; ours would duplicate them.
        "server_header": False,
        "date_header": False,
        "timeout_graceful_shutdown": settings.shutdown_drain_seconds,
    }
    options.update(overrides)
    return uvicorn.Config(app if app is not None else served_app(settings), **options)


def _announce_dashboard(settings: Settings) -> None:
    """Where the dashboard is; a key generated just now is printed this once (it is kept in
    ``NEXUS_DATA_DIR``, readable by its owner only)."""
    keys = resolve_keys(
        api_key=settings.management_api_key,
        session_secret=settings.dashboard_session_secret,
        data_dir=settings.nexus_data_dir,
        generate_key=settings.dashboard_generate_key,
    )
    url = f"http://{'localhost' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/dashboard/"  # noqa: S104
    if keys.generated_key:
        print(
            f"\nDashboard: {url}\nDashboard key (generated now, kept in {settings.nexus_data_dir}/"
            f"{KEY_FILE}): {keys.api_key}\n",
            flush=True,
        )
    elif keys.api_key is None:
        # Said at every start, as the other cases are: where a key would be kept, and how to get one.
        log.warning(
            "No dashboard key: set DASHBOARD_API_KEY, or DASHBOARD_GENERATE_KEY=true to have one generated and "
            "kept in %s; until then the dashboard at %s only says how to set one",
            Path(settings.nexus_data_dir) / KEY_FILE,
            url,
        )
    elif settings.management_api_key:
        source = "DASHBOARD_API_KEY" if settings.dashboard_api_key else "INTERNAL_API_KEY"
        log.info("Dashboard at %s: sign in with the key in %s", url, source)
    else:
        log.info("Dashboard at %s: sign in with the key kept in %s", url, Path(settings.nexus_data_dir) / KEY_FILE)


def _stopped(sig: int, frame: FrameType | None) -> None:
    """uvicorn re-raises the shutdown signal once it has stopped gracefully; by then there is
    nothing left to do, and the process should end with status 0, not die of the signal."""


def serve(settings: Settings) -> None:
    upstream = "" if settings.nexus_role == "dashboard" else f", upstream {settings.claude_api_base_url}"
    log.info(
        "claude-nexus %s (%s) listening on %s:%s with %d worker(s)%s",
        __version__,
        settings.nexus_role,
        settings.host,
        settings.port,
        settings.workers,
        upstream,
    )
    for note in startup_warnings(settings, os.environ):
        log.warning("%s", note)
    signal.signal(signal.SIGTERM, _stopped)
    settings = resolve_storage(settings)
    if settings.serves_dashboard:
        _announce_dashboard(settings)
    if settings.workers == 1:
        uvicorn.Server(server_config(settings)).run()
        return
    # Each worker builds its own app from the environment (which holds .env / --env-file), and
    # uses the database this process resolved (the embedded server it started, if any).
    if settings.database_url:
        os.environ["DATABASE_URL"] = settings.database_url
    os.environ["NEXUS_ROLE"] = settings.nexus_role
    os.environ["WORKERS"] = str(settings.workers)  # a worker knows it has siblings (MCP goes stateless)
    config = server_config(settings, WORKER_APP_FACTORY, factory=True, workers=settings.workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
