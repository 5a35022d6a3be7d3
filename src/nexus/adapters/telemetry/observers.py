"""The observers this process runs, chosen by configuration."""

from __future__ import annotations

from collections.abc import Iterator

from nexus.adapters.telemetry.debug_log import DebugLogObserver
from nexus.adapters.telemetry.otel import OtelExchangeObserver, Telemetry
from nexus.application.exchange import Exchange
from nexus.application.ports import ExchangeObserver, FanOut


class NullObserver:
    needs_response_body = False

    def observe(self, exchange: Exchange) -> None:
        return None


def build_observer(
    *,
    telemetry: Telemetry | None,
    debug: bool,
    upstream_host: str,
    recorder: ExchangeObserver | None = None,
    workers: list[ExchangeObserver | None] | None = None,
) -> ExchangeObserver:
    """The recorder first, then the background workers that are on (Slack, the telemetry
    endpoint, test samples), then spans and the debug log."""
    observers: list[ExchangeObserver] = [recorder] if recorder is not None else []
    observers.extend(worker for worker in workers or [] if worker is not None)
    if telemetry is not None:
        observers.append(OtelExchangeObserver(telemetry, upstream_host=upstream_host))
    if debug:
        observers.append(DebugLogObserver())
    if not observers:
        return NullObserver()
    return observers[0] if len(observers) == 1 else FanOut(observers)


def telemetry_lifetime(telemetry: Telemetry | None) -> Iterator[Telemetry | None]:
    """Flush and stop the exporters when the app shuts down."""
    try:
        yield telemetry
    finally:
        if telemetry is not None:
            telemetry.shutdown()
