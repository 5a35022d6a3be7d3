"""The usage page's charts as the data Chart.js draws: tokens per hour by domain over the last
day, and an account's input and output tokens per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from nexus.application.ports.dashboard_queries import DashboardQueries, DomainHourPoint
from nexus.entrypoints.dashboard.pages.usage_sections import DayRow

HOURS = 24
HOURLY_DOMAINS = 6  # the busiest domains get a line each; the rest are summed as "other"


async def hourly_chart(queries: DashboardQueries, domain: str | None, now: datetime) -> dict[str, Any]:
    """Input + output tokens per hour over the last 24 hours, one line per domain: the busiest
    ``HOURLY_DOMAINS`` of all accounts (or only the filtered domain), the rest summed as
    "other". One read: the sums of each domain and hour."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    hours = [first + timedelta(hours=n) for n in range(HOURS)]
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
    return {"type": "line", "labels": [hour.strftime("%m-%d %H:00") for hour in hours], "series": series}


def _per_hour(points: Sequence[DomainHourPoint], hours: list[datetime]) -> list[int]:
    found: dict[datetime, int] = {}
    for point in points:
        hour = _hour(point)
        found[hour] = found.get(hour, 0) + point.input_tokens + point.output_tokens
    return [found.get(hour, 0) for hour in hours]


def _hour(point: DomainHourPoint) -> datetime:
    instant = point.hour if point.hour.tzinfo else point.hour.replace(tzinfo=UTC)
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def daily_chart(rows: list[DayRow]) -> dict[str, Any]:
    return {
        "type": "bar",
        "labels": [row.date for row in rows],
        "series": [
            {"label": "Input", "data": [row.totals.input_tokens for row in rows]},
            {"label": "Output", "data": [row.totals.output_tokens for row in rows]},
        ],
    }
