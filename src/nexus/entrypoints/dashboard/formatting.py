"""How the dashboard writes money, times, durations and counts: one way on every page."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

NOTHING = "—"


def money(cost: str | Decimal | float | None) -> str:
    """``$0.0012345``: exact (as stored, 9 decimals at most), trailing zeros dropped down to
    two, so a tiny cost never shows as $0.0000; ``—`` when unpriced."""
    if cost is None:
        return NOTHING
    try:
        value = Decimal(str(cost))  # str: a float's digits as shown, not its binary expansion
    except InvalidOperation:
        return NOTHING
    if not value.is_finite():
        return NOTHING
    whole, _, fraction = f"{abs(value):f}".partition(".")
    sign = "-" if value < 0 else ""
    return f"{sign}${int(whole):,}.{fraction.rstrip('0').ljust(2, '0')}"


def duration(ms: float | None) -> str:
    if ms is None:
        return NOTHING
    if ms < 1000:
        return f"{ms:,.0f} ms"
    return f"{ms / 1000:,.2f} s"


def when(moment: datetime | None) -> str:
    if moment is None:
        return NOTHING
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: int | None) -> str:
    return f"{value:,}" if value is not None else NOTHING
