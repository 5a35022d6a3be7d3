"""CORS for ``/v1/*``, so browser clients (the SDK with ``dangerouslyAllowBrowser``) can use
the proxy from the origins ``CORS_ALLOWED_ORIGINS`` names, and no others.

A preflight (``OPTIONS``) is always answered here and never forwarded: Anthropic has nothing
to say about this proxy's origins. Without configured origins, no response carries an
``Access-Control-Allow-Origin``, so browsers keep other sites' pages out (the default).
"""

from __future__ import annotations

from typing import Any

from nexus.domain.headers import header_value

_METHODS = b"GET, POST, DELETE, OPTIONS"
_DEFAULT_HEADERS = b"content-type, authorization, x-api-key, anthropic-version, anthropic-beta"
_MAX_AGE = b"86400"


class ProxyCors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origin.encode("latin-1") for origin in origins if origin != "*")
        self.active = bool(origins)

    def _allowed(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for this request, or None."""
        origin = header_value(headers, b"origin")
        if origin is None or not self.active:
            return None
        if self._any:
            return b"*"
        return origin if origin.rstrip(b"/") in self._origins else None

    async def preflight(self, scope: dict[str, Any], send: Any) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        answer = [(b"allow", _METHODS), (b"vary", b"origin"), (b"content-length", b"0")]
        allowed = self._allowed(headers)
        if allowed is not None:
            asked = header_value(headers, b"access-control-request-headers")
            answer += [
                (b"access-control-allow-origin", allowed),
                (b"access-control-allow-methods", _METHODS),
                (b"access-control-allow-headers", asked or _DEFAULT_HEADERS),
                (b"access-control-max-age", _MAX_AGE),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": answer})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def wrap(self, scope: dict[str, Any], send: Any) -> Any:
        """``send``, adding the CORS headers to the response of an allowed origin's request."""
        allowed = self._allowed(scope["headers"])
        if allowed is None:
            return send

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"access-control-allow-origin", allowed),
                    # Pages may read request-id, retry-after and the rate-limit headers.
                    (b"access-control-expose-headers", b"*"),
                    (b"vary", b"origin"),
                ]
            await send(message)

        return send_with_cors
