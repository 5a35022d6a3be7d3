"""Small ASGI helpers for the raw proxy route (no framework on the hot path)."""

from __future__ import annotations

from typing import Any

from nexus.domain.errors import ProxyError, error_body

Scope = dict[str, Any]
Message = dict[str, Any]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected; nothing more can be sent to it."""


class AbortResponse(Exception):
    """Raised after the response started to make the server drop the connection, so the
    client sees a truncated body (as upstream's) rather than a clean end."""


async def send_json(
    send: Any, status: int, body: bytes, request_id: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", JSON),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
    ]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_proxy_error(send: Any, error: ProxyError, request_id: bytes) -> None:
    """The proxy's own error, in Anthropic's format, carrying the exchange id."""
    extra = [(b"retry-after", str(error.retry_after_s).encode())] if error.retry_after_s is not None else []
    extra.extend(error.headers)
    body = error_body(error.error_type, error.message, request_id.decode())
    await send_json(send, error.status, body, request_id, extra)
