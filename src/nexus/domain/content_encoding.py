"""Response bodies are relayed as sent (possibly compressed); reading them needs decoding."""

from __future__ import annotations

import zlib


def decoded_body(body: bytes, encoding: bytes | None) -> bytes | None:
    """The body as upstream meant it; None for an encoding this module cannot read."""
    name = (encoding or b"identity").strip().lower()
    if name == b"identity":
        return body
    if name in (b"gzip", b"deflate", b"x-gzip"):
        try:
            return zlib.decompress(body, wbits=zlib.MAX_WBITS | 32)
        except zlib.error:
            return None
    return None
