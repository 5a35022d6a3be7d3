"""Posting JSON to a webhook: Slack's incoming webhooks, the telemetry endpoint (httpx; 5 s
timeout; the URL is treated as a secret)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from nexus.application.ports.notifier import DeliveryFailed

TIMEOUT_S = 5.0


class HttpxWebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, payload: dict[str, Any]) -> None:
        await self.post_bytes(url, msgspec.json.encode(payload))

    async def post_bytes(self, url: str, body: bytes) -> None:
        """Deliver a JSON body already encoded, or raise DeliveryFailed."""
        try:
            response = await self._client.post(url, content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            # The exception's text can hold the URL, whose path is the webhook's secret.
            raise DeliveryFailed(f"the webhook cannot be reached ({type(exc).__name__})", retryable=True) from None
        if response.is_success:
            return
        said = response.text[:100]
        if response.status_code == 429:
            raise DeliveryFailed("rate limited (429)", retryable=True, retry_after=_seconds(response))
        raise DeliveryFailed(
            f"the webhook answered {response.status_code} {said!r}", retryable=response.status_code >= 500
        )


def _seconds(response: httpx.Response) -> float | None:
    with contextlib.suppress(TypeError, ValueError):
        return max(float(response.headers.get("retry-after")), 0.0)
    return None


@contextlib.asynccontextmanager
async def open_webhook_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own: a slow receiver must never hold a connection upstream needs."""
    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
        yield client
