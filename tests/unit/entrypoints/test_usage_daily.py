"""The usage page's daily table: newest first, days without traffic collapsed."""

from __future__ import annotations

from nexus.application.use_cases.account_usage import Totals
from nexus.entrypoints.dashboard.pages.usage_daily import QuietDays, daily_lines
from nexus.entrypoints.dashboard.pages.usage_sections import DayRow


def day(date: str, requests: int) -> DayRow:
    totals = Totals(
        requests=requests,
        input_tokens=10 * requests,
        output_tokens=requests,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
        cost_usd="0.000000000",
        unpriced_requests=0,
    )
    return DayRow(date=date, totals=totals)


def test_newest_first_with_each_quiet_run_one_line() -> None:
    days = [day("2026-12-01", 0), day("2026-12-02", 0), day("2026-12-03", 4), day("2026-12-04", 0),
            day("2026-12-05", 0), day("2026-12-06", 0), day("2026-12-07", 2)]  # fmt: skip
    assert daily_lines(days) == [
        days[6],
        QuietDays(newest="2026-12-06", oldest="2026-12-04", days_without_traffic=3),
        days[2],
        QuietDays(newest="2026-12-02", oldest="2026-12-01", days_without_traffic=2),
    ]


def test_a_single_quiet_day_and_no_days() -> None:
    days = [day("2026-12-05", 1), day("2026-12-06", 0), day("2026-12-07", 1)]
    assert daily_lines(days) == [
        days[2],
        QuietDays(newest="2026-12-06", oldest="2026-12-06", days_without_traffic=1),
        days[0],
    ]
    assert daily_lines([]) == []
    assert daily_lines([day("2026-12-07", 0)]) == [
        QuietDays(newest="2026-12-07", oldest="2026-12-07", days_without_traffic=1)
    ]
