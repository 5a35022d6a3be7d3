"""The buckets of a time series: UTC minutes, hours or days, their edges aligned on the step
(a day starts at 00:00 UTC), every bucket of a period listed so an empty one is a zero.

A chart that leaves out the buckets with nothing in them draws one bar for a day with one
busy hour, and no gap where traffic stopped: the series is always the whole period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

Step = Literal["minute", "hour", "day"]

STEP_SIZE: dict[Step, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
MAX_BUCKETS = 2_000  # a period of more is a caller's mistake, not a chart

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_start(instant: datetime, step: Step) -> datetime:
    """The start of the bucket holding ``instant`` (a naive one is taken as UTC), in UTC."""
    utc = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    size = STEP_SIZE[step]
    return _EPOCH + (utc - _EPOCH) // size * size


def bucket_starts(since: datetime, until: datetime, step: Step) -> list[datetime]:
    """Every bucket from the one holding ``since`` to the last one starting before ``until``,
    oldest first (none when ``until`` is not after ``since``)."""
    size = STEP_SIZE[step]
    start = bucket_start(since, step)
    count = max(0, -((start - until) // size))  # ceil((until - start) / size)
    if count > MAX_BUCKETS:
        raise ValueError(f"{count} {step} buckets from {since} to {until}: more than {MAX_BUCKETS}")
    return [start + n * size for n in range(count)]
