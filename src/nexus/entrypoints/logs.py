"""Process-wide logging set-up."""

from __future__ import annotations

import logging

from nexus.entrypoints.http.asgi_io import AbortResponse

# Per-request chatter from client libraries would cost a log line on every proxied request.
_QUIET = ("httpx", "httpcore", "aiohttp.access", "aiohttp.client", "filelock")


class _DropDeliberateAborts(logging.Filter):
    """uvicorn reports any exception after the response started as an application error;
    the proxy raises one on purpose to pass an upstream drop on to the client, and has
    already logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, AbortResponse):
                return False
            error = error.__cause__ or error.__context__
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_DropDeliberateAborts())
