"""Per-domain token counters, as the original proxy kept them in memory (and a bit more).

Every request counts, errors included (they add no tokens). ``/v1/messages`` calls are split
by kind (``inference``, ``query_evaluation``, ``quota``); other ``/v1`` calls (models, files,
batches, ``count_tokens``) count as requests only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from nexus.domain.usage import TokenUsage

NO_DOMAIN = "(none)"  # requests rejected before a domain was known (malformed Host)


class UsageSample(msgspec.Struct, frozen=True, kw_only=True):
    """What one finished exchange adds to its domain's counters."""

    domain: str | None
    error: bool = False  # answered with a status of 400 or more, or a stream that broke off
    request_type: str | None = None
    tool_calls: int = 0
    usage: TokenUsage | None = None
    cost_usd: Decimal | None = None
    at_ms: int


class DomainCounters(msgspec.Struct, kw_only=True):
    """Running totals for one domain since the process started."""

    requests: int = 0
    inference: int = 0
    query_evaluation: int = 0
    quota: int = 0
    errors: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    last_updated_ms: int = 0

    def add(self, sample: UsageSample) -> None:
        self.requests += 1
        if sample.request_type == "inference":
            self.inference += 1
        elif sample.request_type == "query_evaluation":
            self.query_evaluation += 1
        elif sample.request_type == "quota":
            self.quota += 1
        if sample.error:
            self.errors += 1
        self.tool_calls += sample.tool_calls
        if sample.usage is not None:
            self.input_tokens += sample.usage.input_tokens
            self.output_tokens += sample.usage.output_tokens
            self.cache_creation_input_tokens += sample.usage.cache_creation_input_tokens
            self.cache_read_input_tokens += sample.usage.cache_read_input_tokens
        if sample.cost_usd is not None:
            self.cost_usd += sample.cost_usd
        self.last_updated_ms = max(self.last_updated_ms, sample.at_ms)

    def copy(self) -> DomainCounters:
        return msgspec.structs.replace(self)


# The original's columns first, in its order and wording; ours after them.
_COLUMNS = ("Domain", "Reqs", "Query", "Infer", "Tools", "Input Tok", "Output Tok", "Total Tok", "Quota", "Errors",
            "Cache Write", "Cache Read", "Cost USD")  # fmt: skip


def format_report(counters: Mapping[str, DomainCounters], *, now_ms: int, started_ms: int) -> str:
    """The console report in the original's layout: a title with the time and the uptime, a
    rule, one line per domain (sorted) and a TOTAL line, columns aligned."""
    rows = [_cells(domain, entry) for domain, entry in sorted(counters.items())]
    total = DomainCounters()
    for entry in counters.values():
        _accumulate(total, entry)
    table = [list(_COLUMNS), *rows, _cells("TOTAL", total)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    width = max(len(line) for line in lines)
    heavy, light = "=" * width, "-" * width
    title = f"Token Usage Report - {_utc(now_ms)} (uptime {_uptime(now_ms - started_ms)})"
    return "\n".join([title, heavy, lines[0], light, *lines[1:-1], light, lines[-1], heavy])


def _utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _uptime(elapsed_ms: int) -> str:
    minutes, seconds = divmod(max(elapsed_ms, 0) // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s"


def _cells(domain: str, entry: DomainCounters) -> list[str]:
    return [
        domain,
        f"{entry.requests:,}",
        f"{entry.query_evaluation:,}",
        f"{entry.inference:,}",
        f"{entry.tool_calls:,}",
        f"{entry.input_tokens:,}",
        f"{entry.output_tokens:,}",
        f"{entry.input_tokens + entry.output_tokens:,}",
        f"{entry.quota:,}",
        f"{entry.errors:,}",
        f"{entry.cache_creation_input_tokens:,}",
        f"{entry.cache_read_input_tokens:,}",
        f"{entry.cost_usd:,.4f}",
    ]


def _accumulate(total: DomainCounters, entry: DomainCounters) -> None:
    for field in DomainCounters.__struct_fields__:
        if field == "last_updated_ms":
            total.last_updated_ms = max(total.last_updated_ms, entry.last_updated_ms)
        else:
            setattr(total, field, getattr(total, field) + getattr(entry, field))
