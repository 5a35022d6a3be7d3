"""``TELEMETRY_ENDPOINT``: one JSON summary per request, POSTed as the original claude-nexus did.

``{requestId, timestamp, domain, apiKey, model, inputTokens, outputTokens, duration, status,
error?, toolCallCount, requestType}``: ``apiKey`` is the client's key reduced to its last ten
characters behind ``***`` (the original's "masked last 10"), ``duration`` in milliseconds.
One attempt with a 5 s timeout, off the request path; failures are counted, not retried.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.notifications.background import ExchangeWorker
from nexus.application.ports.notifier import DeliveryFailed, WebhookSender
from nexus.application.recording.row import measure
from nexus.domain.headers import client_key

log = logging.getLogger(__name__)


class TelemetryPoster(ExchangeWorker):
    name = "telemetry-endpoint"
    needs_response_body = True  # usage and tool calls are read from the response

    def __init__(self, *, endpoint: str, sender: WebhookSender, queue_size: int = 1000) -> None:
        super().__init__(queue_size=queue_size)
        self._endpoint = endpoint
        self._sender = sender
        self.sent = 0
        self.failed = 0

    async def handle(self, item: Exchange) -> None:
        try:
            await self._sender.post(self._endpoint, telemetry_of(item))
        except DeliveryFailed as exc:
            self.failed += 1
            if self.failed == 1 or self.failed % 100 == 0:
                log.warning("Telemetry endpoint: %s (%d failures so far)", exc, self.failed)
        else:
            self.sent += 1

    def counters(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "queued": self.queued}


def telemetry_of(exchange: Exchange) -> dict[str, Any]:
    measured = measure(exchange)
    facts = measured.facts
    usage = facts.usage if facts is not None else None
    key = client_key(exchange.request_headers)
    payload: dict[str, Any] = {
        "requestId": exchange.request_id,
        "timestamp": datetime.fromtimestamp(exchange.started_at_ms / 1000, UTC).isoformat(timespec="milliseconds"),
        "domain": exchange.domain,
        "apiKey": "***" + key[-10:] if key and len(key) > 20 else None,
        "model": (facts.model if facts else None) or exchange.requested_model,
        "inputTokens": usage.input_tokens if usage else 0,
        "outputTokens": usage.output_tokens if usage else 0,
        "duration": round(exchange.duration_s * 1000),
        "status": exchange.status,
        "toolCallCount": facts.tool_calls if facts else 0,
        "requestType": measured.request_type,
    }
    if exchange.error or exchange.status >= 400:
        payload["error"] = exchange.error or f"HTTP {exchange.status}"
    return payload
