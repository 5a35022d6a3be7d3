"""Anthropic's own view of a subscription's limits: the ``anthropic-ratelimit-unified-*`` headers.

Claude subscription (OAuth) traffic carries them on every answer, 200s and 429s alike. They
are not in Anthropic's public documentation; the names and values here are the ones observed
on the wire:

- ``-status``: ``allowed``, ``allowed_warning`` or ``rejected`` (the overall verdict);
- ``-reset``: Unix epoch seconds when the binding window resets;
- ``-representative-claim``: which window binds (``five_hour``, ``seven_day``, ...);
- ``-5h-*`` and ``-7d-*``: ``utilization`` (a fraction, above 1 once over), ``status``,
  ``reset`` for the five-hour and seven-day windows;
- ``-overage-status`` (and ``-overage-disabled-reason``): pay-as-you-go extra usage.

Values that do not parse are left out rather than guessed; every unified header is kept as
received in ``headers`` so that families not modelled here (per-model weekly windows,
fallback) are not lost.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

UNIFIED_PREFIX = b"anthropic-ratelimit-unified-"
ALERT_STATUSES = frozenset({"allowed_warning", "rejected"})
_MAX_VALUE_LENGTH = 200


class UnifiedRateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """One response's unified rate-limit headers, parsed; every field may be absent."""

    status: str | None = None
    reset: int | None = None  # epoch seconds
    representative_claim: str | None = None
    five_hour_status: str | None = None
    five_hour_utilization: float | None = None
    five_hour_reset: int | None = None
    seven_day_status: str | None = None
    seven_day_utilization: float | None = None
    seven_day_reset: int | None = None
    overage_status: str | None = None
    overage_disabled_reason: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # suffix after the prefix -> value

    @property
    def alarming(self) -> bool:
        """Anthropic warns that the account is close to, or over, a limit."""
        return self.status in ALERT_STATUSES


_TEXT_FIELDS = {
    "status": "status",
    "representative-claim": "representative_claim",
    "5h-status": "five_hour_status",
    "7d-status": "seven_day_status",
    "overage-status": "overage_status",
    "overage-disabled-reason": "overage_disabled_reason",
}
_EPOCH_FIELDS = {"reset": "reset", "5h-reset": "five_hour_reset", "7d-reset": "seven_day_reset"}
_FRACTION_FIELDS = {"5h-utilization": "five_hour_utilization", "7d-utilization": "seven_day_utilization"}


def parse_unified_rate_limit(headers: Iterable[tuple[bytes, bytes]]) -> UnifiedRateLimit | None:
    """The unified rate-limit state a response reports.

    Args:
        headers: Response headers as ``(name, value)`` bytes, in any case.

    Returns:
        The parsed headers, or None when the response carries none of them (API-key traffic,
        the proxy's own errors).
    """
    raw: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered.startswith(UNIFIED_PREFIX):
            suffix = lowered[len(UNIFIED_PREFIX) :].decode("latin-1")
            raw.setdefault(suffix, value.decode("latin-1").strip()[:_MAX_VALUE_LENGTH])
    if not raw:
        return None
    fields: dict[str, object] = {}
    for suffix, field in _TEXT_FIELDS.items():
        if text := raw.get(suffix, "").lower():
            fields[field] = text
    for suffix, field in _EPOCH_FIELDS.items():
        if (epoch := _epoch_seconds(raw.get(suffix))) is not None:
            fields[field] = epoch
    for suffix, field in _FRACTION_FIELDS.items():
        if (fraction := _fraction(raw.get(suffix))) is not None:
            fields[field] = fraction
    return UnifiedRateLimit(**fields, headers=raw)  # type: ignore[arg-type]


def _epoch_seconds(value: str | None) -> int | None:
    if not value:
        return None
    try:
        seconds = int(float(value))
    except (ValueError, OverflowError):
        return None
    # Anything outside 2001..2286 is not an epoch in seconds (milliseconds, garbage).
    return seconds if 1_000_000_000 <= seconds < 10_000_000_000 else None


def _fraction(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < float("inf") else None


def is_transition_to_alert(previous: str | None, current: str | None) -> bool:
    """Whether a status change deserves a warning: into ``allowed_warning`` or ``rejected``
    from anything else (including from the other alert status, which is a change of severity)."""
    return current in ALERT_STATUSES and current != previous
