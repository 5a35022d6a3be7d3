"""Who hears about each finished exchange (telemetry now; the recorder and alerts later)."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from nexus.application.exchange import Exchange

log = logging.getLogger(__name__)


@runtime_checkable
class ExchangeObserver(Protocol):
    @property
    def needs_response_body(self) -> bool:
        """Whether ``response_chunks`` must be kept for this observer (memory on long streams)."""
        ...

    def observe(self, exchange: Exchange) -> None:
        """Take note of a finished exchange. Called on the event loop after the response is
        complete: must not block, and must not raise."""
        ...


class FanOut:
    """Several observers behind one; a failing observer does not stop the others."""

    def __init__(self, observers: list[ExchangeObserver]) -> None:
        self._observers = observers
        self.needs_response_body = any(observer.needs_response_body for observer in observers)

    def observe(self, exchange: Exchange) -> None:
        for observer in self._observers:
            try:
                observer.observe(exchange)
            except Exception:
                log.exception("Exchange observer %r failed", observer)
