"""Headers as they may be shown: every credential replaced by stars."""

from __future__ import annotations

MASK = "********"
_SECRET_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"x-api-key", b"cookie", b"set-cookie", b"x-dashboard-key"}
)


def masked_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Decoded headers with secrets masked; an auth scheme stays visible (``Bearer ********``)."""
    shown = []
    for name, value in headers:
        text = value.decode("latin-1")
        if name in _SECRET_HEADERS:
            scheme, space, _ = text.partition(" ")
            text = f"{scheme} {MASK}" if space and name.endswith(b"authorization") else MASK
        shown.append((name.decode("latin-1"), text))
    return shown
