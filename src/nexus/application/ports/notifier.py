"""Where notifications go: a domain's target, and a webhook that delivers a message."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from nexus.domain.slack_message import SlackTarget


class DeliveryFailed(Exception):
    """A message was not delivered. ``retry_after`` (seconds) when the receiver asked to wait
    (Slack's 429); ``retryable`` False when trying again cannot help (a 4xx: a bad webhook,
    an archived channel). The message never holds the webhook URL."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after


@runtime_checkable
class NotificationTargets(Protocol):
    async def target_for(self, domain: str) -> SlackTarget | None:
        """The domain's own target (its credential file's ``slack`` block), else the global
        one; None when the domain is silenced or nothing is configured."""
        ...


@runtime_checkable
class WebhookSender(Protocol):
    async def post(self, url: str, payload: dict[str, Any]) -> None:
        """Deliver one message, or raise DeliveryFailed."""
        ...


@runtime_checkable
class BackgroundPoster(Protocol):
    """POSTs JSON bodies to its one URL somewhere else (another process): ``offer`` never
    waits, and drops (counted) what cannot be taken."""

    sent: int
    failed: int
    dropped: int

    @property
    def queued(self) -> int: ...

    def offer(self, payload: dict[str, Any]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
