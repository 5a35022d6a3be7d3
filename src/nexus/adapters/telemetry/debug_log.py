"""``DEBUG=true``: each request and response in the log, every credential masked."""

from __future__ import annotations

import logging

from nexus.application.exchange import Exchange
from nexus.domain.headers import header_value
from nexus.domain.masking import masked_headers

log = logging.getLogger("nexus.exchange")
PREVIEW_BYTES = 4096


class DebugLogObserver:
    needs_response_body = True

    def observe(self, exchange: Exchange) -> None:
        log.info(
            "request %s %s",
            exchange.method,
            exchange.path,
            extra={
                "query": exchange.query_string.decode("latin-1"),
                "domain": exchange.domain,
                "headers": masked_headers(exchange.request_headers),
                "body_bytes": len(exchange.request_body or b""),
                "body": _preview(exchange.request_body),
            },
        )
        body = exchange.response_body
        readable = header_value(exchange.response_headers, b"content-encoding") in (None, b"identity")
        log.info(
            "response %s %s",
            exchange.status,
            exchange.outcome,
            extra={
                "status": exchange.status,
                "outcome": exchange.outcome,
                "error": exchange.error,
                "account_id": exchange.account_id,
                "duration_ms": round(exchange.duration_s * 1000, 3),
                "headers": masked_headers(exchange.response_headers),
                "body_bytes": len(body),
                "body": _preview(body) if readable else "(compressed)",
            },
        )


def _preview(body: bytes | None) -> str | None:
    if body is None:
        return None
    text = body[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    return text + "…" if len(body) > PREVIEW_BYTES else text
