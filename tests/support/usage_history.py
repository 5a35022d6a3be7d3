"""Traffic minutes, hours and days old, for the dashboard's charts (the proxy cannot be run
in the past): rows written into ``exchanges`` as the recorder writes them, the hourly rollup
rebuilt from them, and what each chart should draw from a set of rows, computed here by
datetime's own formatting, independently of the dashboard's code."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.support.database import query, rebuild_usage_hourly

# How long ago each past row was, and its model, input and output tokens: a few minutes back
# (the 1 h view's minutes), hours (24 h) and days (7 d, 30 d); the last is outside every period.
PAST = (
    (timedelta(minutes=12), "claude-haiku-4-5", 1_200, 300),
    (timedelta(minutes=47), "claude-sonnet-5", 29_706, 512),
    (timedelta(hours=3, minutes=5), "claude-sonnet-5", 4_000, 800),
    (timedelta(hours=7, minutes=30), "claude-opus-5", 9_000, 1_500),
    (timedelta(hours=26), "claude-sonnet-5", 2_500, 250),
    (timedelta(days=3, hours=2), "claude-haiku-4-5", 6_000, 600),
    (timedelta(days=12), "claude-opus-5", 15_000, 2_000),
    (timedelta(days=28), "claude-sonnet-5", 3_000, 400),
    (timedelta(days=45), "claude-sonnet-5", 99_000, 9_900),
)
STEPS = {"1h": timedelta(minutes=1), "24h": timedelta(hours=1), "7d": timedelta(hours=1), "30d": timedelta(days=1)}
# A bucket's label is its start formatted: these formats drop what is finer than the bucket,
# so any instant in it gives its label.
LABELS = {"1h": "%H:%M", "24h": "%m-%d %H:00", "7d": "%m-%d %H:00", "30d": "%Y-%m-%d"}


def seed_history(url: str, now: datetime, *, domain: str) -> list[dict[str, Any]]:
    """The ``PAST`` rows on ``domain`` (the 3 h one an upstream error), the rollup rebuilt;
    every stored exchange afterwards, oldest first."""
    for ago, model, input_tokens, output_tokens in PAST:
        ts = now - ago
        query(url, "SELECT nexus_ensure_exchange_partitions($1, 1)", ts.date())
        status = 529 if ago == timedelta(hours=3, minutes=5) else 200
        query(
            url,
            """INSERT INTO exchanges (id, ts, domain, account_id, method, path, status, state, stream, duration_ms,
                   tool_call_count, is_subtask, request_type, model_requested, model, input_tokens, output_tokens,
                   cache_read_input_tokens, cost_usd)
               VALUES ($1, $2, $3, 'acc_history', 'POST', '/v1/messages', $4, $5, false, 900, 0, false, 'inference',
                       $6, $6, $7, $8, $9, $10)""",
            uuid.uuid4(), ts, domain, status, "upstream_error" if status >= 400 else "complete", model, input_tokens,
            output_tokens, input_tokens * 3, Decimal(output_tokens) / 10_000,
        )  # fmt: skip
    rebuild_usage_hourly(url)
    return stored(url)


def stored(url: str) -> list[dict[str, Any]]:
    return query(
        url,
        """SELECT ts, domain, coalesce(model, model_requested) AS model, status, state,
                  coalesce(input_tokens, 0) AS input_tokens, coalesce(output_tokens, 0) AS output_tokens,
                  coalesce(cache_read_input_tokens, 0) AS cache_read_input_tokens,
                  coalesce(cache_creation_input_tokens, 0) AS cache_creation_input_tokens
           FROM exchanges ORDER BY ts""",
    )


def is_error(row: dict[str, Any]) -> bool:
    return bool(row["status"] >= 400 or row["state"] in {"upstream_error", "truncated"})


def bucket_labels(period: str, since: datetime, until: datetime) -> list[str]:
    """The label of every bucket from ``since``'s to ``until``'s, stepping with timedelta."""
    step = STEPS[period]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + (since.astimezone(UTC) - epoch) // step * step
    labels = []
    while start < until:
        labels.append(start.strftime(LABELS[period]))
        start += step
    return labels


def per_bucket(period: str, rows: Iterable[dict[str, Any]], since: datetime, labels: list[str]) -> dict[str, list[int]]:
    """Requests, errors and each token count per label, over the rows from ``since`` on."""
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if row["ts"] < since:
            continue
        cell = sums[row["ts"].astimezone(UTC).strftime(LABELS[period])]
        cell["requests"] += 1
        cell["errors"] += is_error(row)
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            cell[name] += row[name]
    names = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_input_tokens",
             "cache_creation_input_tokens")  # fmt: skip
    return {name: [sums[label][name] if label in sums else 0 for label in labels] for name in names}
