"""Whether this process is shutting down (readiness turns false while it drains)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Lifecycle:
    def __init__(self) -> None:
        self.draining = False

    def start_draining(self) -> None:
        if not self.draining:
            log.info("Shutting down: readiness is now false; finishing requests in flight")
        self.draining = True

    def watch_signals(self) -> None:
        """Turn readiness off the moment a shutdown signal arrives, then let the server's own
        handler (uvicorn's graceful shutdown) run as before.

        Called at app start-up, after the server installed its handlers; a no-op outside the
        main thread, where signals cannot be handled.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SHUTDOWN_SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._chain(previous))

    def _chain(self, previous: Any) -> Any:
        def handler(sig: int, frame: FrameType | None) -> None:
            self.start_draining()
            previous(sig, frame)

        return handler
