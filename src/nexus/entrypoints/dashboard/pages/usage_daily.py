"""The daily history's table as it reads best: newest day first, and each run of days without
traffic as one line ("3 days without traffic") instead of rows of zeros.

Only the table: the daily chart (``render.usage_charts``) and the export keep every day,
oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from nexus.entrypoints.dashboard.pages.usage_sections import DayRow


class QuietDays(msgspec.Struct, frozen=True, kw_only=True):
    """Consecutive days without a request, from ``newest`` back to ``oldest`` (ISO dates)."""

    newest: str
    oldest: str
    days_without_traffic: int


def daily_lines(days: Sequence[DayRow]) -> list[DayRow | QuietDays]:
    """``days`` (oldest first, one per day) newest first, quiet runs collapsed."""
    lines: list[DayRow | QuietDays] = []
    for day in reversed(days):
        if day.totals.requests:
            lines.append(day)
            continue
        last = lines[-1] if lines else None
        if isinstance(last, QuietDays):
            lines[-1] = QuietDays(
                newest=last.newest, oldest=day.date, days_without_traffic=last.days_without_traffic + 1
            )
        else:
            lines.append(QuietDays(newest=day.date, oldest=day.date, days_without_traffic=1))
    return lines
