"""How the dashboard writes money, times, durations and counts: one way on every page.

``TEMPLATE_GLOBALS`` are registered once on the Jinja environment (``routes.template_config``),
so every template, the live feed's rows rendered outside a page included, calls the same ones.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

NOTHING = "—"
# Every cost on every page: four significant digits, never fewer than cents. A request's
# $0.0012345 reads $0.001235 and never $0.00; a month's $1,234.5678 reads $1,234.57. The
# API and the exports keep the exact stored value.
SIGNIFICANT_DIGITS = 4


def money(cost: str | Decimal | float | None) -> str:
    """``$0.001235``: the cost to ``SIGNIFICANT_DIGITS`` significant digits (half up), at least
    two decimals, trailing zeros past the cents dropped; ``—`` when unpriced."""
    value = decimal(cost)
    if value is None:
        return NOTHING
    if value:
        decimals = max(2, SIGNIFICANT_DIGITS - 1 - value.adjusted())
        with localcontext() as context:
            context.prec = 64  # a stored cost has at most 20 digits; room for the rounding
            with suppress(InvalidOperation):  # beyond any cost: shown as it is
                value = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(value):f}".partition(".")
    sign = "-" if value < 0 else ""
    return f"{sign}${int(whole):,}.{fraction.rstrip('0').ljust(2, '0')}"


def decimal(cost: str | Decimal | float | None) -> Decimal | None:
    """A stored cost as a number; ``None`` when there is none or it is not a finite number."""
    if cost is None:
        return None
    try:
        value = Decimal(str(cost))  # str: a float's digits as shown, not its binary expansion
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def duration(ms: float | None) -> str:
    """``850 ms`` below a second, ``1.23 s`` from one."""
    if ms is None:
        return NOTHING
    if ms < 1000:
        return f"{ms:,.0f} ms"
    return f"{ms / 1000:,.2f} s"


def when(moment: datetime | None) -> str:
    """``2026-12-06 12:00:05 UTC``; a time without offset is taken as UTC (as stored)."""
    if moment is None:
        return NOTHING
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(moment: datetime | None) -> str:
    """``12:00:05`` (UTC): the time of day, where the date goes without saying."""
    if moment is None:
        return NOTHING
    return _utc(moment).strftime("%H:%M:%S")


def time_left(moment: datetime | None, now: datetime) -> str:
    """``in 2 h 05 min`` (or ``passed``) for a reset time."""
    if moment is None:
        return ""
    left = int((_utc(moment) - _utc(now)).total_seconds())
    if left <= 0:
        return "passed"
    hours, minutes = divmod(left // 60, 60)
    if hours >= 48:
        return f"in {hours // 24} d {hours % 24} h"
    return f"in {hours} h {minutes:02d} min" if hours else f"in {minutes} min"


def number(value: int | None) -> str:
    """``1,234,567``; ``—`` when unknown."""
    return f"{value:,}" if value is not None else NOTHING


def percent(value: float | None, decimals: int = 1) -> str:
    """``12.5 %``; ``—`` when there is no share to give."""
    return f"{value:.{decimals}f} %" if value is not None else NOTHING


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


TEMPLATE_GLOBALS: dict[str, Any] = {
    "money": money,
    "duration": duration,
    "when": when,
    "clock": clock,
    "time_left": time_left,
    "number": number,
    "percent": percent,
}
