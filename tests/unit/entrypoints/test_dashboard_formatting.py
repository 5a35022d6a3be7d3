from datetime import UTC, datetime, timedelta, timezone

from nexus.entrypoints.dashboard.formatting import duration, money, number, when


def test_money_is_exact_and_never_hides_a_small_cost() -> None:
    assert money("0.001234500") == "$0.0012345"
    assert money("0.000000001") == "$0.000000001"
    assert money("2") == "$2.00"
    assert money("1234.5") == "$1,234.50"
    assert money("0E-9") == "$0.00"
    assert money(None) == "—"
    assert money("not a number") == "—"
    assert money("NaN") == "—"
    assert money("-0.5") == "-$0.50"


def test_times_are_utc_and_durations_switch_to_seconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert when(datetime(2026, 12, 6, 13, 0, 5, tzinfo=paris)) == "2026-12-06 12:00:05 UTC"
    assert when(datetime(2026, 12, 6, 12, 0, 5, tzinfo=UTC)) == "2026-12-06 12:00:05 UTC"
    assert when(None) == "—"
    assert duration(999.4) == "999 ms"
    assert duration(1500) == "1.50 s"
    assert duration(None) == "—"
    assert number(1234567) == "1,234,567"
    assert number(None) == "—"
