"""An API key's limits as its answers report them: the per-minute ``anthropic-ratelimit-*`` buckets.

API-key traffic carries no unified (5-hour) headers; instead each answer gives, per bucket
(``requests``, ``tokens``, ``input-tokens``, ``output-tokens``), ``-limit``, ``-remaining`` and
``-reset`` (RFC 3339). An account pool reads the tightest bucket as the key's utilization, so
API keys and subscriptions are weighed on one scale: the share of the binding limit used.
A 429 may say ``retry-after`` (seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

BUCKETS = ("requests", "tokens", "input-tokens", "output-tokens")
_NAMES = {
    f"anthropic-ratelimit-{bucket}-{field}".encode(): (bucket, field)
    for bucket in BUCKETS
    for field in ("limit", "remaining", "reset")
}
_MAX_RETRY_AFTER_S = 24 * 3600


class KeyWindow(msgspec.Struct, frozen=True):
    utilization: float  # of the tightest bucket, 0..1
    reset: int | None  # epoch seconds when that bucket refills


def parse_key_rate_limit(headers: Iterable[tuple[bytes, bytes]]) -> KeyWindow | None:
    """The tightest bucket's share used and its reset, or None when no bucket is reported whole."""
    seen: dict[str, dict[str, str]] = {}
    for name, value in headers:
        if (known := _NAMES.get(name.lower())) is not None:
            seen.setdefault(known[0], {}).setdefault(known[1], value.decode("latin-1").strip())
    tightest: KeyWindow | None = None
    for fields in seen.values():
        limit, remaining = _count(fields.get("limit")), _count(fields.get("remaining"))
        if limit is None or remaining is None or limit <= 0:
            continue
        window = KeyWindow(utilization=min(max(1 - remaining / limit, 0.0), 1.0), reset=_epoch(fields.get("reset")))
        if tightest is None or window.utilization > tightest.utilization:
            tightest = window
    return tightest


def retry_after_s(headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """``retry-after`` in seconds (the delta form Anthropic sends), or None."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if 0 <= seconds <= _MAX_RETRY_AFTER_S else None
    return None


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 19 else None


def _epoch(value: str | None) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None
