"""The usage page's charts as the data Chart.js draws: tokens per hour by domain over the last
day, and an account's input and output tokens per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from nexus.application.ports.dashboard_queries import DashboardQueries, DomainHourPoint
from nexus.domain.time_buckets import bucket_start, bucket_starts
from nexus.entrypoints.dashboard.pages.usage_sections import DayRow
from nexus.entrypoints.dashboard.render.overview_charts import LABEL_FORMATS

HOURS = 24
HOURLY_DOMAINS = 6  # the busiest domains get a line each; the rest are summed as "other"


async def hourly_chart(queries: DashboardQueries, domain: str | None, now: datetime) -> dict[str, Any]:
    """Input + output tokens per hour over the last 24 hours, one line per domain: the busiest
    ``HOURLY_DOMAINS`` of all accounts (or only the filtered domain), the rest summed as
    "other". One read: the sums of each domain and hour."""
    current = bucket_start(now, "hour")
    first = current - timedelta(hours=HOURS - 1)
    hours = bucket_starts(first, current + timedelta(hours=1), "hour")  # every one, empty ones as zeros
    points = await queries.hourly_by_domain(first, now, domain=domain)
    series: list[dict[str, Any]] = []
    if domain is not None:
        series.append({"label": domain, "data": _per_hour(points, hours)})
    else:
        rest = _per_hour(points, hours)
        requests: dict[str | None, int] = {}
        for point in points:
            requests[point.domain] = requests.get(point.domain, 0) + point.requests
        ranked = sorted(requests, key=lambda name: (-requests[name], name or ""))
        busiest = [name for name in ranked if name][:HOURLY_DOMAINS]
        for name in busiest:
            data = _per_hour([point for point in points if point.domain == name], hours)
            series.append({"label": name, "data": data})
            rest = [left - used for left, used in zip(rest, data, strict=True)]
        if any(rest):
            series.append({"label": "other", "data": rest})
    return {"type": "line", "labels": [hour.strftime(LABEL_FORMATS["hour"]) for hour in hours], "series": series}


def _per_hour(points: Sequence[DomainHourPoint], hours: list[datetime]) -> list[int]:
    found: dict[datetime, int] = {}
    for point in points:
        hour = bucket_start(point.hour, "hour")
        found[hour] = found.get(hour, 0) + point.input_tokens + point.output_tokens
    return [found.get(hour, 0) for hour in hours]


def daily_chart(rows: list[DayRow]) -> dict[str, Any]:
    return {
        "type": "bar",
        "labels": [row.date for row in rows],
        "series": [
            {"label": "Input", "data": [row.totals.input_tokens for row in rows]},
            {"label": "Output", "data": [row.totals.output_tokens for row in rows]},
        ],
    }
