"""Headers every dashboard response carries, and cookies marked Secure behind https."""

from __future__ import annotations

from typing import Any

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware: the strict CSP and friends on every response; ``Secure`` added to every
    cookie when the request came over https (directly, or per a trusted proxy's headers)."""

    def __init__(self, app: Any, *, trust_forwarded: bool = False) -> None:
        self.app = app
        self._trust_forwarded = trust_forwarded

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https" or (self._trust_forwarded and _forwarded_https(scope))

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [_secured(pair) if secure else pair for pair in message.get("headers", [])]
                present = {name for name, _ in headers}
                headers.extend(pair for pair in _HEADERS if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _secured(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    name, value = pair
    if name.lower() == b"set-cookie" and b"; secure" not in value.lower():
        return name, value + b"; Secure"
    return pair


def _forwarded_https(scope: Any) -> bool:
    return any(
        name == b"x-forwarded-proto" and value.split(b",")[0].strip().lower() == b"https"
        for name, value in scope.get("headers", [])
    )
