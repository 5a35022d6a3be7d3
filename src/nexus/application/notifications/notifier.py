"""The Slack notifier: an exchange observer that queues, and a task that builds and delivers.

``observe`` only enqueues (bounded; a full queue drops and counts), so traffic never waits on
Slack. The task turns each exchange into at most one message:
- a conversation message for an ``inference`` exchange whose last user text changed for its
  domain (tool turns repeat the text, so a turn is announced once);
- a problem message for an error (upstream error, proxy rejection, cut stream), at most one
  per kind and domain per minute; the next one sent says how many were held back.
Delivery has a 5 s timeout (the sender's), and is tried up to three times, waiting as long as
Slack's ``retry-after`` asks (at most a minute) or 1 s, then 2 s after other failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from nexus.application.exchange import Exchange
from nexus.application.notifications.background import QueuedWorker
from nexus.application.notifications.telemetry_endpoint import TelemetryPoster
from nexus.application.notifications.turns import last_user_text, reply_of
from nexus.application.ports.health import ProbeResult
from nexus.application.ports.notifier import DeliveryFailed, NotificationTargets, WebhookSender
from nexus.application.ports.system import Clock
from nexus.application.recording.row import Measured, measure
from nexus.domain import json_text
from nexus.domain.content_encoding import decoded_body
from nexus.domain.headers import client_key, header_value
from nexus.domain.limit_alerts import LimitAlert
from nexus.domain.message_rebuild import rebuild_message
from nexus.domain.outcome import is_error
from nexus.domain.proxy_request import MESSAGES_PATH
from nexus.domain.slack_message import (
    Conversation,
    Problem,
    SlackTarget,
    conversation_payload,
    key_hint,
    limit_alert_payload,
    problem_payload,
)

log = logging.getLogger(__name__)

DEDUP_WINDOW_S = 60.0
MAX_ATTEMPTS = 3
MAX_RETRY_AFTER_S = 60.0
_BACKOFF_S = (1.0, 2.0)
_MAX_DOMAINS = 10_000  # last user texts remembered (a bound, not a limit anyone meets)


class SlackNotifier(QueuedWorker["Exchange | Problem | LimitAlert"]):
    name = "slack-notifier"
    needs_response_body = True  # Claude's reply is part of the message

    def __init__(
        self,
        *,
        targets: NotificationTargets,
        sender: WebhookSender,
        clock: Clock,
        queue_size: int = 1000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(queue_size=queue_size)
        self._targets = targets
        self._sender = sender
        self._clock = clock
        self._sleep = sleep
        self._last_text: dict[str, str] = {}
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # (kind, domain) -> (start, held back)
        self.sent = 0
        self.failed = 0
        self.suppressed = 0

    # -- fed by traffic (the event loop, after the response) ----------------------------------

    def observe(self, exchange: Exchange) -> None:
        # Most exchanges of a tool loop are no error and repeat the user's words: tested here,
        # they never cost a trip through the queue (measured: the queue's task switches and
        # target lookups were 3 % of the proxy's CPU at c=32 for exchanges that sent nothing).
        # New words are announced only from an inference exchange, and that is decided here
        # too, while the exchange is fresh (one measurement, kept a moment, serves the
        # telemetry summary as well): other requests carrying the user's words (a title or
        # quota call) never queue. Measured: 11 us of the proxy's CPU per such request, at
        # c=32, when they queued and were measured again off the queue.
        if is_error(exchange.status, exchange.outcome) or (
            self._new_text(exchange) is not None and _announced_response(measure(exchange)) is not None
        ):
            self._enqueue(exchange)

    def report(self, problem: Problem) -> None:
        """A problem seen elsewhere (the recorder, the circuit breaker)."""
        self._enqueue(problem)

    def alert(self, alert: LimitAlert) -> None:
        """An account near a limit (the limit watch claimed it: no deduplication here)."""
        self._enqueue(alert)

    def counters(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "suppressed": self.suppressed,
            "queued": self.queued,
        }

    async def handle(self, item: Exchange | Problem | LimitAlert) -> None:
        if isinstance(item, LimitAlert):
            target = await self._targets.target_for(item.domain or item.account_id)
            if target is not None:
                await self._deliver(target, limit_alert_payload(target, item))
            return
        problem = item if isinstance(item, Problem) else _problem_of(item)
        if problem is not None:
            target = await self._targets.target_for(problem.domain)
            if target is not None and (held_back := self._admit(problem)) is not None:
                await self._deliver(target, problem_payload(target, _with_suppressed(problem, held_back)))
            return
        assert isinstance(item, Exchange)
        target = await self._targets.target_for(item.domain or "unknown")
        if target is not None and (turn := self._turn_of(item)) is not None:
            await self._deliver(target, conversation_payload(target, turn))

    def _admit(self, problem: Problem) -> int | None:
        """How many of the kind were held back before this one, or None to hold this one back."""
        key = (problem.kind, problem.domain)
        now = self._clock.monotonic()
        started, held = self._windows.get(key, (None, 0))
        if started is not None and now - started < DEDUP_WINDOW_S:
            self._windows[key] = (started, held + 1)
            self.suppressed += 1
            return None
        self._windows[key] = (now, 0)
        return held

    def _new_text(self, exchange: Exchange) -> str | None:
        """The last user text of a Messages call when it differs from its domain's last one."""
        if exchange.path != MESSAGES_PATH or exchange.method != "POST":
            return None
        text = last_user_text(exchange.request_body)
        return text if text and self._last_text.get(exchange.domain or "unknown") != text else None

    def _turn_of(self, exchange: Exchange) -> Conversation | None:
        # The cheap test first (again: an exchange queued behind one of the same turn passed it
        # before that one was announced): most exchanges end here without their response read.
        if (text := self._new_text(exchange)) is None:
            return None
        domain = exchange.domain or "unknown"
        measured = measure(exchange)
        if (response := _announced_response(measured)) is None:
            return None
        if len(self._last_text) >= _MAX_DOMAINS:
            self._last_text.pop(next(iter(self._last_text)))
        self._last_text[domain] = text
        reply, tools = reply_of(_message(response, stream=exchange.stream))
        usage = measured.facts.usage if measured.facts is not None else None
        return Conversation(
            domain=domain,
            request_id=exchange.request_id,
            user_text=text,
            reply_text=reply,
            tools=tools,
            model=(measured.facts.model if measured.facts else None) or exchange.requested_model,
            key_hint=key_hint(client_key(exchange.request_headers)),
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )

    async def _deliver(self, target: SlackTarget, payload: dict[str, Any]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._sender.post(target.webhook_url, payload)
            except DeliveryFailed as exc:
                if not exc.retryable or attempt == MAX_ATTEMPTS:
                    self.failed += 1
                    log.warning("Slack message not delivered after %d attempts: %s", attempt, exc)
                    return
                wait = exc.retry_after if exc.retry_after is not None else _BACKOFF_S[attempt - 1]
                await self._sleep(min(wait, MAX_RETRY_AFTER_S))
            else:
                self.sent += 1
                return


def _problem_of(exchange: Exchange) -> Problem | None:
    if not is_error(exchange.status, exchange.outcome):
        return None
    kind = exchange.outcome if exchange.outcome in ("rejected", "truncated") else "upstream_error"
    detail = f"{exchange.method} {exchange.path} answered {exchange.status}"
    if said := exchange.error or _upstream_error(exchange):
        detail += f": {said}"
    return Problem(kind=kind, domain=exchange.domain or "unknown", request_id=exchange.request_id, detail=detail)


def _with_suppressed(problem: Problem, held_back: int) -> Problem:
    return msgspec.structs.replace(problem, suppressed=held_back)


def _upstream_error(exchange: Exchange) -> str | None:
    """``type: message`` of an Anthropic error body, if the response is one."""
    body = decoded_body(exchange.response_body, header_value(exchange.response_headers, b"content-encoding"))
    try:
        error = json_text.loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    return ": ".join(str(error[key]) for key in ("type", "message") if isinstance(error.get(key), str)) or None


def _message(response: bytes, *, stream: bool) -> Any:
    if stream:
        return rebuild_message(response)
    try:
        return json_text.loads(response)
    except ValueError:
        return None


def _announced_response(measured: Measured) -> bytes | None:
    """The response of an exchange whose new user words make a conversation message (an
    answered inference call); None for any other."""
    return measured.response if measured.request_type == "inference" else None


class NotificationsProbe:
    """Slack and telemetry-endpoint delivery in ``/health``: always healthy (traffic never
    depends on them), with counters so dropped and failed messages are seen."""

    probe_name = "notifications"

    def __init__(self, notifier: SlackNotifier | None, telemetry: TelemetryPoster | None = None) -> None:
        self._notifier = notifier
        self._telemetry = telemetry

    async def probe(self) -> ProbeResult:
        detail: dict[str, object] = (
            {"slack": "off"} if self._notifier is None else {"slack": "on", **self._notifier.counters()}
        )
        detail["telemetry_endpoint"] = "off" if self._telemetry is None else self._telemetry.counters()
        return ProbeResult(healthy=True, detail=detail)


def slack_notifier(
    *, enabled: bool, targets: NotificationTargets, sender: WebhookSender, clock: Clock
) -> SlackNotifier | None:
    return SlackNotifier(targets=targets, sender=sender, clock=clock) if enabled else None
