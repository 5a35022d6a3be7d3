"""In-memory token accounting: per-domain counters, the periodic console report, and the
watch on Anthropic's unified rate-limit status of each account.

The figures come from the ``ExchangeRow`` each exchange becomes (usage, cost, request kind),
so they match what is stored to the token. With storage on, the recorder hands every row it
builds to :meth:`TokenAccounting.on_row` from its background task, so nothing is parsed twice;
with storage off, :class:`CountingObserver` builds the same row without bodies. The proxy's
hot path never parses a response for this.

Counters live in this process since it started: with ``--workers N`` each worker counts what
it served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import msgspec

from nexus.application.exchange import Exchange
from nexus.application.limits.admissions import Used
from nexus.application.ports.system import Clock
from nexus.application.recording.row import ExchangeRow, measure
from nexus.domain.outcome import is_error
from nexus.domain.pricing import cost_usd
from nexus.domain.rate_limits import UnifiedRateLimit, is_transition_to_alert, parse_unified_rate_limit
from nexus.domain.token_counters import NO_DOMAIN, DomainCounters, UsageSample, format_report
from nexus.domain.usage import TokenUsage

log = logging.getLogger(__name__)


class RateLimitSeen(msgspec.Struct, frozen=True, kw_only=True):
    """The newest unified rate-limit snapshot of an account this process has seen."""

    account_id: str
    domain: str | None
    seen_at: datetime
    limit: UnifiedRateLimit


class TokenAccounting:
    """Per-domain counters since start-up, and each account's latest rate-limit status.

    A WARNING is logged when an account's unified status becomes ``allowed_warning`` or
    ``rejected`` (once per change, however many requests carry it), and an INFO line when it
    is ``allowed`` again.
    """

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self.started_ms = clock.now_ms()
        self._domains: dict[str, DomainCounters] = {}
        self._rate_limits: dict[str, RateLimitSeen] = {}
        self._changed_since_report = False

    def on_row(self, row: ExchangeRow) -> None:
        """Count one finished exchange (the recorder's row hook)."""
        self.add(sample_from_row(row))
        if row.rate_limit is not None and row.account_id:
            self.note_rate_limit(
                RateLimitSeen(account_id=row.account_id, domain=row.domain, seen_at=row.ts, limit=row.rate_limit)
            )

    def add(self, sample: UsageSample) -> None:
        domain = sample.domain or NO_DOMAIN
        counters = self._domains.get(domain)
        if counters is None:
            counters = self._domains[domain] = DomainCounters()
        counters.add(sample)
        self._changed_since_report = True

    def snapshot(self, domain: str | None = None) -> dict[str, DomainCounters]:
        """Copies of the counters, of every domain or of one (empty when it had no traffic)."""
        if domain is not None:
            found = self._domains.get(domain)
            return {domain: found.copy()} if found is not None else {}
        return {name: counters.copy() for name, counters in sorted(self._domains.items())}

    def take_report(self) -> str | None:
        """The console table, or None when nothing happened since the last one."""
        if not self._changed_since_report:
            return None
        self._changed_since_report = False
        return format_report(self._domains, now_ms=self._clock.now_ms(), started_ms=self.started_ms)

    def note_rate_limit(self, seen: RateLimitSeen) -> None:
        previous = self._rate_limits.get(seen.account_id)
        if previous is not None and seen.seen_at < previous.seen_at:
            return  # an older answer finishing late says nothing new
        self._rate_limits[seen.account_id] = seen
        before = previous.limit.status if previous is not None else None
        after = seen.limit.status
        if is_transition_to_alert(before, after):
            log.warning(
                "Anthropic reports account %s as %s: %s (seen on %s)",
                seen.account_id,
                after,
                _describe(seen.limit),
                seen.domain or NO_DOMAIN,
            )
        elif previous is not None and previous.limit.alarming and after == "allowed":
            log.info("Anthropic reports account %s as allowed again: %s", seen.account_id, _describe(seen.limit))

    def rate_limits(self) -> dict[str, RateLimitSeen]:
        return dict(sorted(self._rate_limits.items()))


def sample_from_row(row: ExchangeRow) -> UsageSample:
    usage = None
    if row.input_tokens is not None or row.output_tokens is not None:
        usage = TokenUsage(
            input_tokens=row.input_tokens or 0,
            output_tokens=row.output_tokens or 0,
            cache_creation_input_tokens=row.cache_creation_input_tokens or 0,
            cache_read_input_tokens=row.cache_read_input_tokens or 0,
        )
    return UsageSample(
        domain=row.domain,
        error=is_error(row.status, row.state),
        request_type=row.request_type,
        tool_calls=row.tool_call_count,
        usage=usage,
        cost_usd=row.cost_usd,
        at_ms=int(row.ts.timestamp() * 1000),
    )


class CountingObserver:
    """Feeds the counters when no recorder does (storage off): the same row, without bodies.

    It runs on the event loop once the client has its answer; building the row parses the
    response once, as the recorder would.
    """

    needs_response_body = True  # usage lives in the response

    def __init__(
        self,
        accounting: TokenAccounting,
        *,
        on_rate_limit: Callable[[RateLimitSeen], None] | None = None,
        on_usage: Callable[[str, Used], None] | None = None,
        on_account_output: Callable[[str, int], None] | None = None,
    ) -> None:
        self._accounting = accounting
        self._on_rate_limit = on_rate_limit
        self._on_usage = on_usage
        self._on_account_output = on_account_output

    def observe(self, exchange: Exchange) -> None:
        try:
            sample, rate_limit = sample_from_exchange(exchange)
        except Exception:
            log.exception("Cannot count exchange %s", exchange.request_id)
            return
        self._accounting.add(sample)
        if self._on_usage is not None and sample.usage is not None:
            usage = sample.usage
            used = Used(usage.input_tokens, usage.cache_creation_input_tokens, usage.output_tokens, sample.cost_usd)
            self._on_usage(exchange.request_id, used)
        output = sample.usage.output_tokens if sample.usage is not None else None
        if self._on_account_output is not None and exchange.account_id and output:
            self._on_account_output(exchange.account_id, output)
        if rate_limit is not None and (exchange.account_id or exchange.domain):
            seen = RateLimitSeen(
                account_id=exchange.account_id or exchange.domain or "",
                domain=exchange.domain,
                seen_at=datetime.fromtimestamp(exchange.started_at_ms / 1000, tz=UTC),
                limit=rate_limit,
            )
            self._accounting.note_rate_limit(seen)
            if self._on_rate_limit is not None:
                self._on_rate_limit(seen)


def sample_from_exchange(exchange: Exchange) -> tuple[UsageSample, UnifiedRateLimit | None]:
    """The counters' share of an exchange, measured without building (or masking) a whole row:
    this runs on the event loop for every request when storage is off."""
    measured = measure(exchange)
    facts = measured.facts
    usage = facts.usage if facts is not None else None
    model = (facts.model if facts is not None else None) or exchange.requested_model
    sample = UsageSample(
        domain=exchange.domain,
        error=is_error(exchange.status, measured.state),
        request_type=measured.request_type,
        tool_calls=facts.tool_calls if facts is not None else 0,
        usage=usage,
        cost_usd=cost_usd(model, usage) if usage is not None else None,
        at_ms=exchange.started_at_ms,
    )
    return sample, parse_unified_rate_limit(exchange.response_headers)


async def report_forever(
    accounting: TokenAccounting,
    interval_s: float,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Log the per-domain table every ``interval_s`` seconds when there was traffic."""
    while True:
        await sleep(interval_s)
        try:
            report = accounting.take_report()
        except Exception:
            log.exception("Cannot build the token usage report")
            continue
        if report is not None:
            log.info(report)


async def token_report_lifetime(accounting: TokenAccounting, interval_s: float) -> AsyncIterator[None]:
    """The report task while the app runs; ``interval_s`` 0 turns the report off."""
    if interval_s <= 0:
        yield None
        return
    task = asyncio.create_task(report_forever(accounting, interval_s), name="token-report")
    try:
        yield None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _describe(limit: UnifiedRateLimit) -> str:
    parts = []
    if limit.representative_claim:
        parts.append(f"binding window {limit.representative_claim}")
    if limit.reset is not None:
        parts.append(f"resets {_iso(limit.reset)}")
    for label, utilization, status in (
        ("5h", limit.five_hour_utilization, limit.five_hour_status),
        ("7d", limit.seven_day_utilization, limit.seven_day_status),
    ):
        if utilization is not None:
            parts.append(f"{label} {utilization:.0%} used" + (f" ({status})" if status else ""))
    if limit.overage_status:
        parts.append(f"overage {limit.overage_status}")
    return ", ".join(parts) or "no details"


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
