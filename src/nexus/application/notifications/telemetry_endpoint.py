"""``TELEMETRY_ENDPOINT``: one JSON summary per request, POSTed as the original claude-nexus did.

``{requestId, timestamp, domain, apiKey, model, inputTokens, outputTokens, duration, status,
error?, toolCallCount, requestType}``: ``apiKey`` is the client's key reduced to its last ten
characters behind ``***`` (the original's "masked last 10"), ``duration`` in milliseconds.
One attempt with a 5 s timeout, off the request path; failures are counted, not retried.
The POSTs themselves are made by a ``BackgroundPoster`` in another process (ADR 11): here an
exchange costs its summary and one write to a pipe, both done as it is observed (once the
client has its answer). No queue of its own: queued exchanges would be summarised later, after
the one-slot measurement cache has moved on, and each stream parsed a second time (measured:
the telemetry worker was 6 % of the proxy's CPU on streams at c=32, most of it that re-parse
and the queue's task switches); the pipe's buffer is the queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.ports.notifier import BackgroundPoster
from nexus.application.recording.row import measure
from nexus.domain.headers import client_key


class TelemetryPoster:
    name = "telemetry-endpoint"
    needs_response_body = True  # usage and tool calls are read from the response

    def __init__(self, *, poster: BackgroundPoster) -> None:
        self._poster = poster

    async def start(self) -> None:
        await self._poster.start()

    async def stop(self) -> None:
        await self._poster.stop()  # the poster sends what it was handed before it exits

    def observe(self, exchange: Exchange) -> None:
        self._poster.offer(telemetry_of(exchange))

    def counters(self) -> dict[str, int]:
        poster = self._poster
        return {"sent": poster.sent, "failed": poster.failed, "dropped": poster.dropped, "queued": poster.queued}


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
