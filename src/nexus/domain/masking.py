"""Headers as they may be shown: every credential replaced by stars."""

from __future__ import annotations

MASK = "********"
_SECRET_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"x-api-key", b"cookie", b"set-cookie", b"x-dashboard-key"}
)


def without_secrets(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Raw headers with every credential masked, for anything written to disk.

    ``masked_headers`` reads them exactly as it reads the originals, so a row built from an
    exchange kept on disk is the row its original would have given.
    """
    return [(name, _masked(name, value.decode("latin-1")).encode("latin-1")) for name, value in headers]


def masked_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Decoded headers with secrets masked; an auth scheme stays visible (``Bearer ********``)."""
    return [(name.decode("latin-1"), _masked(name, value.decode("latin-1"))) for name, value in headers]


def _masked(name: bytes, text: str) -> str:
    if name not in _SECRET_HEADERS:
        return text
    scheme, space, _ = text.partition(" ")
    return f"{scheme} {MASK}" if space and name.endswith(b"authorization") else MASK
