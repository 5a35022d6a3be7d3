"""Token usage per account for the management API: windows, days, series, limits, and
Anthropic's own latest view of each account.

The results are the API's JSON, field for field: timestamps are aware UTC datetimes, costs
exact decimal strings (``"0.012345000"``) as in the rest of the management API. Limits come
from the credential files (``limits``); nothing here is hard-coded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from nexus.application.ports.credential_store import CredentialStore
from nexus.application.ports.system import Clock
from nexus.application.ports.usage_queries import (
    RateLimitSnapshot,
    TokenTotals,
    UsageFilter,
    UsageQueries,
    UsageUnavailable,
)
from nexus.domain.credentials import AccountLimits, CredentialFileInvalid
from nexus.domain.host import parse_host
from nexus.domain.pricing import cost_text

ACCOUNTS_WINDOW_MINUTES = 300
MAX_WINDOW_MINUTES = 31 * 24 * 60
MAX_DAYS = 366
MAX_WINDOW_HOURS = 31 * 24
MAX_INTERVAL_MINUTES = 24 * 60
MAX_BUCKETS = 1000
_LIMIT_WINDOWS = {"five_hour": 5 * 60, "seven_day": 7 * 24 * 60}


class InvalidUsageQuery(ValueError):
    """A parameter out of range; the message says which and what is accepted."""


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: str
    unpriced_requests: int


class Window(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    minutes: int


class DomainUsage(msgspec.Struct, frozen=True, kw_only=True):
    domain: str | None
    totals: Totals


class LimitUse(msgspec.Struct, frozen=True, kw_only=True):
    """One configured limit against the account's use over its trailing window."""

    window_minutes: int
    # Tokens (an int) or USD (a float). Annotated float, which takes an int too: JSON has one
    # number type, and `int | float` was documented as a oneOf that any integer matched twice.
    # msgspec writes each value as it is, so a token count stays 100000, not 100000.0.
    limit: float
    used: float
    remaining: float
    percentage_used: float


class AnthropicWindow(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None
    utilization: float | None  # a fraction as Anthropic sends it: 1.0 is the whole window
    resets_at: datetime | None


class AnthropicView(msgspec.Struct, frozen=True, kw_only=True):
    """The newest ``anthropic-ratelimit-unified-*`` headers seen for the account."""

    seen_at: datetime
    status_since: datetime
    domain: str | None
    request_id: str
    status: str | None
    resets_at: datetime | None
    representative_claim: str | None
    five_hour: AnthropicWindow
    seven_day: AnthropicWindow
    overage_status: str | None
    overage_disabled_reason: str | None
    headers: dict[str, str]


class AccountUsage(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    totals: Totals
    domains: list[DomainUsage]
    limits: dict[str, LimitUse]
    anthropic: AnthropicView | None


class AccountsReport(msgspec.Struct, frozen=True, kw_only=True):
    window: Window
    accounts: list[AccountUsage]


class CurrentReport(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    window: Window
    domain: str | None
    model: str | None
    totals: Totals
    anthropic: AnthropicView | None


class DayUsage(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    totals: Totals


class DailyReport(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    days: int
    domain: str | None
    model: str | None
    daily: list[DayUsage]


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    totals: Totals


class SeriesReport(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    window: Window
    interval_minutes: int
    domain: str | None
    model: str | None
    buckets: list[Bucket]


class UsageReports:
    """The per-account usage use cases; raise ``UsageUnavailable`` when storage is off or the
    database cannot be read, ``InvalidUsageQuery`` for parameters out of range."""

    def __init__(self, *, queries: UsageQueries | None, credentials: CredentialStore, clock: Clock) -> None:
        self._queries = queries
        self._credentials = credentials
        self._clock = clock

    async def accounts(self) -> AccountsReport:
        """Every account with traffic in the last 5 hours."""
        queries = self._require()
        now = self._now()
        since = now - timedelta(minutes=ACCOUNTS_WINDOW_MINUTES)
        found = await queries.accounts(since, now)
        ids = [account.account_id for account in found]
        snapshots = await queries.rate_limits(ids)
        limits = await self._limits()
        reports = []
        for account in found:
            configured = limits.get(account.account_id)
            reports.append(
                AccountUsage(
                    account_id=account.account_id,
                    totals=_view(account.totals),
                    domains=[DomainUsage(domain=d.domain, totals=_view(d.totals)) for d in account.domains],
                    limits=await self._limit_use(queries, account.account_id, configured, account.totals, now),
                    anthropic=_anthropic(snapshots.get(account.account_id)),
                )
            )
        return AccountsReport(window=Window(start=since, end=now, minutes=ACCOUNTS_WINDOW_MINUTES), accounts=reports)

    async def limit_use(self, account_id: str) -> dict[str, LimitUse]:
        """The account's configured window limits against its use now (empty: none is set)."""
        limits = (await self._limits()).get(account_id)
        if limits is None:
            return {}
        queries = self._require()
        now = self._now()
        five_hours = await queries.totals(
            account_id, now - timedelta(minutes=_LIMIT_WINDOWS["five_hour"]), now, UsageFilter()
        )
        return await self._limit_use(queries, account_id, limits, five_hours, now)

    async def budget_use(self, domain: str, account_id: str) -> LimitUse | None:
        """The domain's cost so far this UTC day against its credential file's ``daily_usd``
        (None: no budget is set)."""
        try:
            stored = await self._credentials.find(parse_host(domain).credential_names)
        except CredentialFileInvalid:
            return None
        limits = stored.credential.limits if stored is not None else None
        if limits is None or limits.daily_usd is None:
            return None
        queries = self._require()
        now = self._now()
        since = datetime(now.year, now.month, now.day, tzinfo=UTC)
        totals = await queries.totals(account_id, since, now, UsageFilter(domain=domain))
        used = round(float(totals.cost_usd), 6)
        return LimitUse(
            window_minutes=int((now - since).total_seconds() // 60),
            limit=limits.daily_usd,
            used=used,
            remaining=round(max(limits.daily_usd - used, 0), 6),
            percentage_used=round(used / limits.daily_usd * 100, 2),
        )

    async def current(self, account_id: str, window_minutes: int, where: UsageFilter) -> CurrentReport:
        """The account's sums over the trailing ``window_minutes``."""
        _check_account(account_id)
        _check_range("window_minutes", window_minutes, 1, MAX_WINDOW_MINUTES)
        queries = self._require()
        now = self._now()
        since = now - timedelta(minutes=window_minutes)
        totals = await queries.totals(account_id, since, now, where)
        snapshots = await queries.rate_limits([account_id])
        return CurrentReport(
            account_id=account_id,
            window=Window(start=since, end=now, minutes=window_minutes),
            domain=where.domain,
            model=where.model,
            totals=_view(totals),
            anthropic=_anthropic(snapshots.get(account_id)),
        )

    async def daily(self, account_id: str, days: int, where: UsageFilter) -> DailyReport:
        """One entry per UTC day, today included, oldest first; days without traffic are zeros."""
        _check_account(account_id)
        _check_range("days", days, 1, MAX_DAYS)
        queries = self._require()
        now = self._now()
        first = now.date() - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        found = {entry.day: entry.totals for entry in await queries.daily(account_id, since, now, where)}
        return DailyReport(
            account_id=account_id,
            days=days,
            domain=where.domain,
            model=where.model,
            daily=[
                DayUsage(date=day, totals=_view(found.get(day, TokenTotals())))
                for day in (first + timedelta(days=n) for n in range(days))
            ],
        )

    async def series(
        self, account_id: str, window_hours: int, interval_minutes: int, where: UsageFilter
    ) -> SeriesReport:
        """Buckets of ``interval_minutes`` aligned on the Unix epoch (UTC), from the one holding
        ``now - window_hours`` to the one holding now; buckets without traffic are zeros."""
        _check_account(account_id)
        _check_range("window_hours", window_hours, 1, MAX_WINDOW_HOURS)
        _check_range("interval_minutes", interval_minutes, 1, MAX_INTERVAL_MINUTES)
        step = timedelta(minutes=interval_minutes)
        now = self._now()
        first = _floor(now - timedelta(hours=window_hours), step)
        count = (now - first) // step + 1
        if count > MAX_BUCKETS:
            raise InvalidUsageQuery(
                f"window_hours={window_hours} in buckets of interval_minutes={interval_minutes} gives {count} "
                f"buckets; at most {MAX_BUCKETS} are served: use a longer interval"
            )
        queries = self._require()
        found = {
            entry.start: entry.totals
            for entry in await queries.buckets(account_id, first, now, interval_minutes, where)
        }
        buckets = []
        for n in range(count):
            start = first + n * step
            buckets.append(Bucket(start=start, end=start + step, totals=_view(found.get(start, TokenTotals()))))
        return SeriesReport(
            account_id=account_id,
            window=Window(start=first, end=now, minutes=window_hours * 60),
            interval_minutes=interval_minutes,
            domain=where.domain,
            model=where.model,
            buckets=buckets,
        )

    def _require(self) -> UsageQueries:
        if self._queries is None:
            raise UsageUnavailable(
                "storage is off: per-account usage is computed from recorded exchanges "
                "(set STORAGE_ENABLED=true and DATABASE_URL, or use /token-stats for this process's counters)"
            )
        return self._queries

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=UTC)

    async def _limits(self) -> dict[str, AccountLimits]:
        """Each account's limits: from the first credential file (by name) that sets any."""
        found: dict[str, AccountLimits] = {}
        for entry in await self._credentials.list_all():
            credential = entry.credential
            if credential is None or credential.limits is None or not credential.limits.configured():
                continue
            found.setdefault(credential.account_id or entry.name, credential.limits)
        return found

    async def _limit_use(
        self,
        queries: UsageQueries,
        account_id: str,
        limits: AccountLimits | None,
        five_hours: TokenTotals,
        now: datetime,
    ) -> dict[str, LimitUse]:
        if limits is None:
            return {}
        used_in: dict[str, TokenTotals] = {"five_hour": five_hours}
        result = {}
        for name, limit in limits.configured().items():
            window, metric = _split_limit_name(name)
            if window not in used_in:
                since = now - timedelta(minutes=_LIMIT_WINDOWS[window])
                used_in[window] = await queries.totals(account_id, since, now, UsageFilter())
            totals = used_in[window]
            used: int | float = totals.output_tokens if metric == "output_tokens" else round(float(totals.cost_usd), 6)
            remaining = max(limit - used, 0)
            result[name] = LimitUse(
                window_minutes=_LIMIT_WINDOWS[window],
                limit=limit,
                used=used,
                remaining=round(remaining, 6) if isinstance(remaining, float) else remaining,
                percentage_used=round(used / limit * 100, 2),
            )
        return result


def _split_limit_name(name: str) -> tuple[str, str]:
    """``five_hour_output_tokens`` -> (``five_hour``, ``output_tokens``)."""
    for window in _LIMIT_WINDOWS:
        if name.startswith(window + "_"):
            return window, name[len(window) + 1 :]
    raise ValueError(f"limit {name!r} names no known window")


def _check_account(account_id: str) -> None:
    if not account_id:
        raise InvalidUsageQuery("account_id is required")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidUsageQuery(f"{name} must be between {low} and {high}, got {value}")


def _floor(instant: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((instant - epoch) // step) * step


def _view(totals: TokenTotals) -> Totals:
    return Totals(
        requests=totals.requests,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        cache_creation_input_tokens=totals.cache_creation_input_tokens,
        cache_read_input_tokens=totals.cache_read_input_tokens,
        cost_usd=cost_text(totals.cost_usd),
        unpriced_requests=totals.unpriced_requests,
    )


def _instant(epoch_s: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, tz=UTC) if epoch_s is not None else None


def _anthropic(snapshot: RateLimitSnapshot | None) -> AnthropicView | None:
    if snapshot is None:
        return None
    limit = snapshot.limit
    return AnthropicView(
        seen_at=snapshot.seen_at,
        status_since=snapshot.status_since,
        domain=snapshot.domain,
        request_id=str(snapshot.exchange_id),
        status=limit.status,
        resets_at=_instant(limit.reset),
        representative_claim=limit.representative_claim,
        five_hour=AnthropicWindow(
            status=limit.five_hour_status,
            utilization=limit.five_hour_utilization,
            resets_at=_instant(limit.five_hour_reset),
        ),
        seven_day=AnthropicWindow(
            status=limit.seven_day_status,
            utilization=limit.seven_day_utilization,
            resets_at=_instant(limit.seven_day_reset),
        ),
        overage_status=limit.overage_status,
        overage_disabled_reason=limit.overage_disabled_reason,
        headers=limit.headers,
    )
