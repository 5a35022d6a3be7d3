"""The overview's series: sums per hour (the rollup) or per minute (the exchanges) folded into
the buckets of a step and zero-filled in Python over the bucket list.

Filling here rather than with ``generate_series`` keeps the one ``GROUPING SETS`` statement
of the overview as it is: its hour rows are at most 721 (30 days), folding them into days
costs nothing, and the buckets' edges come from one function (``domain.time_buckets``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from nexus.adapters.persistence.exchange_queries import exchange_aggregates
from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.dashboard_queries import SeriesPoint
from nexus.domain.pricing import cost_text
from nexus.domain.time_buckets import Step, bucket_start, bucket_starts

_COUNTS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_e = exchanges.c


def minute_sums(start: datetime, until: datetime, domain: str | None) -> Select[Any]:
    """The exchanges' sums per UTC minute from ``start`` to ``until`` (the primary key's ``ts``
    range, or ``exchanges_domain_ts`` with a domain), as ``minute`` and the sums' names."""
    # date_trunc works in the session's time zone; truncating the UTC wall time keeps minutes
    # UTC whatever the server is set to.
    minute = func.timezone("UTC", func.date_trunc("minute", func.timezone("UTC", _e.ts))).label("minute")
    where = [_e.ts >= start, _e.ts < until]
    if domain is not None:
        where.append(_e.domain == domain)
    return select(minute, *exchange_aggregates()).where(*where).group_by(minute)


def fold(rows: Iterable[tuple[datetime, Any]], since: datetime, until: datetime, step: Step) -> list[SeriesPoint]:
    """Every ``step`` bucket from ``since``'s to ``until``'s, each the sum of the ``rows`` (an
    instant and a row with the sums' names) starting in it; zeros where none does."""
    buckets: dict[datetime, list[Any]] = {
        start: [0] * len(_COUNTS) + [Decimal(0)] for start in bucket_starts(since, until, step)
    }
    for instant, row in rows:
        sums = buckets.get(bucket_start(instant, step))
        if sums is None:  # outside the period (the rollup's hour rows are all inside it)
            continue
        for index, name in enumerate(_COUNTS):
            sums[index] += int(getattr(row, name))
        sums[-1] += Decimal(row.cost_usd)
    return [
        SeriesPoint(start=start, **dict(zip(_COUNTS, sums[:-1], strict=True)), cost_usd=cost_text(sums[-1]))
        for start, sums in buckets.items()
    ]
