"""The dashboard's formatters: one way to write a cost, a time, a duration and a count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from jinja2 import Environment

from nexus.domain.pricing import COST_QUANTUM, cost_text
from nexus.entrypoints.dashboard.formatting import (
    TEMPLATE_GLOBALS,
    clock,
    decimal,
    duration,
    money,
    number,
    percent,
    time_left,
    when,
)
from nexus.entrypoints.dashboard.routes import template_config

PARIS = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        ("0.001234500", "$0.001235"),  # four significant digits, half up
        ("0.001234499", "$0.001234"),
        ("0.000000001", "$0.000000001"),  # the smallest stored cost is not $0.00
        ("0.000040000", "$0.00004"),  # trailing zeros past the cents dropped
        ("0.012300000", "$0.0123"),
        ("0.123456789", "$0.1235"),
        ("0.999960000", "$1.00"),  # rounding up to the next digit
        ("12.345600000", "$12.35"),  # never fewer than cents...
        ("123.456000000", "$123.46"),  # ...so a large cost keeps them past four digits
        ("2", "$2.00"),
        ("0.5", "$0.50"),
        ("1234.5", "$1,234.50"),
        ("1234567.891234567", "$1,234,567.89"),
        ("0", "$0.00"),
        ("0E-9", "$0.00"),  # how Decimal writes a stored zero
        ("0.000000000", "$0.00"),
        ("-0.5", "-$0.50"),
        (Decimal("0.25"), "$0.25"),
        (0.1, "$0.10"),  # a float's digits as Python shows them, not 0.1000000000000000055...
        (1e-07, "$0.0000001"),
        (100, "$100.00"),
    ],
)
def test_a_cost_has_four_significant_digits_and_at_least_cents(cost: str | Decimal | float, shown: str) -> None:
    assert money(cost) == shown


@pytest.mark.parametrize("cost", [None, "", "not a number", "NaN", "Infinity", "-inf", "1,5"])
def test_no_cost_or_a_cost_that_is_not_a_number_is_a_dash(cost: str | None) -> None:
    assert money(cost) == "—"
    assert decimal(cost) is None


def test_the_canonical_stored_form_reads_back_unchanged() -> None:
    stored = cost_text(Decimal("0.0000123456789"))
    assert stored == "0.000012346"
    assert Decimal(stored).as_tuple().exponent == COST_QUANTUM.as_tuple().exponent
    assert money(stored) == "$0.00001235"
    assert decimal(stored) == Decimal("0.000012346")


def test_times_are_utc_with_seconds_and_say_so() -> None:
    assert when(datetime(2026, 12, 6, 13, 0, 5, tzinfo=PARIS)) == "2026-12-06 12:00:05 UTC"
    assert when(datetime(2026, 12, 6, 12, 0, 5, tzinfo=UTC)) == "2026-12-06 12:00:05 UTC"
    assert when(datetime(2026, 12, 6, 12, 0, 5)) == "2026-12-06 12:00:05 UTC", "naive is UTC, not local time"
    assert when(datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))) == "2027-01-01 00:30:00 UTC"
    assert when(None) == "—"


def test_the_time_of_day_is_utc_too() -> None:
    assert clock(datetime(2026, 12, 6, 13, 0, 5, tzinfo=PARIS)) == "12:00:05"
    assert clock(datetime(2026, 12, 6, 12, 0, 5)) == "12:00:05"
    assert clock(None) == "—"


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0, "0 ms"),
        (0.4, "0 ms"),
        (850.4, "850 ms"),
        (999.4, "999 ms"),
        (1000, "1.00 s"),
        (1234.0, "1.23 s"),
        (1500, "1.50 s"),
        (3_725_000, "3,725.00 s"),
        (None, "—"),
    ],
)
def test_a_duration_is_in_ms_under_a_second_and_in_seconds_from_one(ms: float | None, shown: str) -> None:
    assert duration(ms) == shown


def test_counts_and_shares() -> None:
    assert number(0) == "0"
    assert number(1234567) == "1,234,567"
    assert number(None) == "—"
    assert percent(12.345) == "12.3 %"
    assert percent(0) == "0.0 %"
    assert percent(99.6, 0) == "100 %"
    assert percent(None) == "—"


@pytest.mark.parametrize(
    ("reset", "shown"),
    [
        (None, ""),
        (NOW - timedelta(seconds=1), "passed"),
        (NOW, "passed"),
        (NOW + timedelta(minutes=7, seconds=30), "in 7 min"),
        (NOW + timedelta(hours=2, minutes=5), "in 2 h 05 min"),
        (NOW + timedelta(hours=47, minutes=59), "in 47 h 59 min"),
        (NOW + timedelta(days=3, hours=4), "in 3 d 4 h"),
        (datetime(2026, 12, 6, 12, 30), "in 30 min"),  # naive is UTC
    ],
)
def test_the_time_left_before_a_reset(reset: datetime | None, shown: str) -> None:
    assert time_left(reset, NOW) == shown


def test_every_template_gets_the_formatters_from_the_engine() -> None:
    engine = template_config().to_engine()
    environment: Environment = engine.engine
    for name, formatter in TEMPLATE_GLOBALS.items():
        assert environment.globals[name] is formatter
    rendered = environment.from_string("{{ money(c) }} {{ when(t) }} {{ duration(d) }} {{ number(n) }}").render(
        c="0.000001000", t=datetime(2026, 12, 6, 12, 0, 5), d=1234, n=5000
    )
    assert rendered == "$0.000001 2026-12-06 12:00:05 UTC 1.23 s 5,000"
