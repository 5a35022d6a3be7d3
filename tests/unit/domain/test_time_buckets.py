"""The buckets of a chart's series: aligned on UTC minutes, hours and days, none left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from nexus.domain.time_buckets import MAX_BUCKETS, bucket_start, bucket_starts


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("instant", "step", "start"),
    [
        ("2026-11-23T10:20:30.5+00:00", "minute", "2026-11-23T10:20:00+00:00"),
        ("2026-11-23T10:20:30+00:00", "hour", "2026-11-23T10:00:00+00:00"),
        ("2026-11-23T10:20:30+00:00", "day", "2026-11-23T00:00:00+00:00"),
        # 00:30 in Paris is still the 22nd in UTC: days are UTC days.
        ("2026-11-23T00:30:00+01:00", "day", "2026-11-22T00:00:00+00:00"),
        ("2026-11-23T10:00:00", "hour", "2026-11-23T10:00:00+00:00"),  # naive is UTC
        ("2026-11-23T10:00:00+00:00", "hour", "2026-11-23T10:00:00+00:00"),  # an edge starts its bucket
    ],
)
def test_a_bucket_starts_on_its_utc_edge(instant: str, step: str, start: str) -> None:
    found = bucket_start(at(instant), step)  # type: ignore[arg-type]
    assert found == at(start)
    assert found.tzinfo is UTC


def test_every_bucket_of_a_period_is_listed_the_one_holding_until_last() -> None:
    since, until = at("2026-11-22T10:00:00+00:00"), at("2026-11-23T10:20:00+00:00")
    hours = bucket_starts(since, until, "hour")
    assert len(hours) == 25
    assert (hours[0], hours[-1]) == (since, at("2026-11-23T10:00:00+00:00"))
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(hours))

    days = bucket_starts(since, until, "day")
    assert days == [at("2026-11-22T00:00:00+00:00"), at("2026-11-23T00:00:00+00:00")]

    minutes = bucket_starts(at("2026-11-23T09:00:00+00:00"), at("2026-11-23T10:20:30+00:00"), "minute")
    assert (len(minutes), minutes[-1]) == (81, at("2026-11-23T10:20:00+00:00"))


def test_until_on_an_edge_is_not_a_bucket_and_an_empty_period_has_none() -> None:
    since = at("2026-11-23T09:00:00+00:00")
    assert bucket_starts(since, at("2026-11-23T11:00:00+00:00"), "hour") == [since, since + timedelta(hours=1)]
    assert bucket_starts(since, since, "minute") == []
    assert bucket_starts(since, since - timedelta(hours=1), "hour") == []
    assert bucket_starts(at("2026-11-23T10:00:00+01:00"), at("2026-11-23T09:30:00+00:00"), "hour") == [since]


def test_a_period_of_too_many_buckets_is_refused() -> None:
    since = at("2026-11-23T00:00:00+00:00")
    assert len(bucket_starts(since, since + timedelta(minutes=MAX_BUCKETS), "minute")) == MAX_BUCKETS
    with pytest.raises(ValueError, match="minute buckets"):
        bucket_starts(since, since + timedelta(minutes=MAX_BUCKETS + 1), "minute")
