"""Trouble the proxy logs (the recorder, the journal, an open circuit) reported to Slack.

The log is where these are told already, worded for people and free of secrets, so a logging
handler on those loggers is the one place that turns them into notifications; the notifier's
per-minute deduplication keeps a flood (a database down for an hour) to one message a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from nexus.application.notifications.notifier import SlackNotifier
from nexus.domain.slack_message import Problem

# Logger name (prefix) -> the kind of problem it reports.
WATCHED = {
    "nexus.application.recording": "recorder",
    "nexus.adapters.persistence.recording": "recorder",
    "nexus.adapters.persistence.linking": "recorder",
    "nexus.adapters.upstream.circuit_breaker": "circuit_open",
}
_DETAIL_LIMIT = 500


class ProblemLogHandler(logging.Handler):
    def __init__(self, notifier: SlackNotifier, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self._notifier = notifier
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        kind = next((kind for name, kind in WATCHED.items() if record.name.startswith(name)), None)
        if kind is None:
            return
        problem = Problem(kind=kind, domain="proxy", request_id=None, detail=record.getMessage()[:_DETAIL_LIMIT])
        # The queue belongs to the event loop; a log line may come from a worker thread. A
        # closing loop (RuntimeError) sends nothing any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._notifier.report, problem)


async def log_bridge_lifetime(notifier: SlackNotifier | None) -> AsyncIterator[ProblemLogHandler | None]:
    """The handler installed on the watched loggers while the app runs (with Slack on)."""
    if notifier is None:
        yield None
        return
    handler = ProblemLogHandler(notifier, asyncio.get_running_loop())
    loggers = [logging.getLogger(name) for name in WATCHED]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
