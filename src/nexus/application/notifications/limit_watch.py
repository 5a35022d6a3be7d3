"""Alerts before a limit: each account's traffic checked against Anthropic's five-hour window,
the operator's limits and each domain's daily budget, off the request path.

The recorder hands every row it builds to ``on_row`` (without storage, the counting observer
hands each rate-limit snapshot to ``on_rate_limit``); an account seen since the last check is
checked once per ``interval_s``, however much traffic it had. A crossed threshold becomes an
alert when this worker claims it in the shared ledger (PostgreSQL: one claim per threshold
per window across workers); the alert is logged, sent to Slack with the window's top
conversations, and listed on the dashboard's usage page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from nexus.application.ports.exchange_queries import QueriesUnavailable
from nexus.application.ports.limit_alerts import AlertLedger
from nexus.application.ports.system import Clock
from nexus.application.ports.usage_queries import UsageUnavailable
from nexus.application.recording.row import ExchangeRow
from nexus.application.token_accounting import RateLimitSeen
from nexus.application.use_cases.account_usage import LimitUse, UsageReports
from nexus.domain.credentials import LIMIT_LABELS
from nexus.domain.limit_alerts import (
    CULPRITS_SHOWN,
    Culprit,
    LimitAlert,
    anthropic_status_key,
    anthropic_window_key,
    budget_key,
    crossed,
    limit_key,
)
from nexus.domain.rate_limits import ALERT_STATUSES, UnifiedRateLimit

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 5.0
FIVE_HOURS = timedelta(hours=5)
_ONCE_S = 8 * 24 * 3600.0  # for keys naming their window: longer than any window
_REMEMBERED = 10_000  # claims remembered locally (a bound, not a limit anyone meets)


class _Seen(msgspec.Struct, kw_only=True):
    domains: set[str] = msgspec.field(default_factory=set)
    rate_limit: UnifiedRateLimit | None = None
    # The recorder tells a row before it is stored, so the first check may sum the database
    # without it: each account seen is checked once more on the next round.
    again: bool = True


class _Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An alert that may be due: its keys by threshold, how long a claim stays quiet, and the
    window whose conversations are named."""

    alert: LimitAlert
    keys: Mapping[str, int | None]
    quiet_s: float
    since: datetime


class LimitWatch:
    name = "limit-watch"

    def __init__(
        self,
        *,
        reports: UsageReports,
        ledger: AlertLedger,
        thresholds: tuple[int, ...],
        clock: Clock,
        send: Callable[[LimitAlert], None] | None,
        interval_s: float = CHECK_INTERVAL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._reports = reports
        self._ledger = ledger
        self._thresholds = thresholds
        self._clock = clock
        self._send = send
        self._interval_s = interval_s
        self._sleep = sleep
        self._pending: dict[str, _Seen] = {}
        self._claimed: dict[str, float] = {}  # key -> when this worker saw it claimed (monotonic)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    # -- fed by traffic (the recorder's task, or the event loop) ------------------------------

    def on_row(self, row: ExchangeRow) -> None:
        if row.account_id:
            self._note(row.account_id, row.domain, row.rate_limit)

    def on_account(self, account_id: str, domain: str | None) -> None:
        """An account served a request: its window is checked (configured limits need no header)."""
        self._note(account_id, domain, None)

    def on_rate_limit(self, seen: RateLimitSeen) -> None:
        self._note(seen.account_id, seen.domain, seen.limit)

    def _note(self, account_id: str, domain: str | None, rate_limit: UnifiedRateLimit | None) -> None:
        seen = self._pending.get(account_id)
        if seen is None:
            seen = self._pending[account_id] = _Seen()
        if domain:
            seen.domains.add(domain)
        if rate_limit is not None:
            seen.rate_limit = rate_limit

    # -- the check ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._sleep(self._interval_s)
            await self.check_pending()

    async def check_pending(self) -> None:
        """Check every account seen since the last check; one that cannot be checked now
        (the database is down) is checked again next time."""
        pending, self._pending = self._pending, {}
        for account_id, seen in pending.items():
            try:
                await self._check(account_id, seen)
                if seen.again:
                    self._requeue(account_id, _Seen(domains=seen.domains, again=False))
            except QueriesUnavailable as exc:
                log.info("Limit alerts for %s wait for the database: %s", account_id, exc)
                self._requeue(account_id, seen)
            except Exception:
                log.exception("Cannot check the limits of %s", account_id)

    def _requeue(self, account_id: str, seen: _Seen) -> None:
        current = self._pending.get(account_id)
        if current is None:
            self._pending[account_id] = _Seen(domains=set(seen.domains), rate_limit=seen.rate_limit, again=seen.again)
            return
        current.domains |= seen.domains
        current.rate_limit = current.rate_limit or seen.rate_limit

    async def _check(self, account_id: str, seen: _Seen) -> None:
        now = datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=UTC)
        candidates = self._anthropic(account_id, seen, now)
        # Storage off, or the database down: the limits cannot be summed now, Anthropic's
        # headers still can (a claim that cannot be made either puts the account back).
        with contextlib.suppress(UsageUnavailable):
            candidates += await self._limits(account_id, seen, now)
        for candidate in candidates:
            await self._claim_and_send(candidate, now)

    def _anthropic(self, account_id: str, seen: _Seen, now: datetime) -> list[_Candidate]:
        limit = seen.rate_limit
        if limit is None:
            return []
        domain = next(iter(sorted(seen.domains)), None)
        window = limit.five_hour_reset or limit.reset
        resets_at = datetime.fromtimestamp(window, tz=UTC) if window else None
        since = resets_at - FIVE_HOURS if resets_at else now - FIVE_HOURS
        found = []
        if limit.five_hour_utilization is not None:
            percent = limit.five_hour_utilization * 100
            keys = {anthropic_window_key(account_id, window, t): t for t in crossed(percent, self._thresholds)}
            if keys:
                alert = LimitAlert(
                    measure="anthropic_5h",
                    account_id=account_id,
                    domain=domain,
                    name="Anthropic five-hour window",
                    threshold=max(keys.values(), key=lambda t: t or 0),
                    percent=percent,
                    used=None,
                    limit=None,
                    resets_at=resets_at,
                )
                found.append(_Candidate(alert=alert, keys=keys, quiet_s=_ONCE_S, since=since))
        for status in dict.fromkeys(s for s in (limit.status, limit.five_hour_status) if s in ALERT_STATUSES):
            alert = LimitAlert(
                measure="anthropic_status",
                account_id=account_id,
                domain=domain,
                name="Anthropic rate-limit status",
                threshold=None,
                percent=None,
                used=None,
                limit=None,
                status=status,
                resets_at=datetime.fromtimestamp(limit.reset, tz=UTC) if limit.reset else resets_at,
            )
            status_key: dict[str, int | None] = {anthropic_status_key(account_id, status, limit.reset or window): None}
            found.append(_Candidate(alert=alert, keys=status_key, quiet_s=_ONCE_S, since=since))
        return found

    async def _limits(self, account_id: str, seen: _Seen, now: datetime) -> list[_Candidate]:
        found = []
        for name, use in (await self._reports.limit_use(account_id)).items():
            window = timedelta(minutes=use.window_minutes)
            keys = {limit_key(account_id, name, t): t for t in crossed(use.percentage_used, self._thresholds)}
            if keys:
                alert = self._limit_alert(
                    account_id=account_id,
                    domain=None,
                    name=LIMIT_LABELS.get(name, name),
                    use=use,
                    keys=keys,
                    measure="limit",
                )
                found.append(_Candidate(alert=alert, keys=keys, quiet_s=window.total_seconds(), since=now - window))
        for domain in sorted(seen.domains):
            budget = await self._reports.budget_use(domain, account_id)
            if budget is None:
                continue
            keys = {budget_key(domain, now.date(), t): t for t in crossed(budget.percentage_used, self._thresholds)}
            if keys:
                alert = self._limit_alert(
                    account_id=account_id,
                    domain=domain,
                    name="daily budget",
                    use=budget,
                    keys=keys,
                    measure="daily_budget",
                )
                since = datetime(now.year, now.month, now.day, tzinfo=UTC)
                found.append(_Candidate(alert=alert, keys=keys, quiet_s=_ONCE_S, since=since))
        return found

    @staticmethod
    def _limit_alert(
        *,
        account_id: str,
        domain: str | None,
        name: str,
        use: LimitUse,
        keys: Mapping[str, int | None],
        measure: Literal["limit", "daily_budget"],
    ) -> LimitAlert:
        cost = isinstance(use.limit, float)
        return LimitAlert(
            measure=measure,
            account_id=account_id,
            domain=domain,
            name=name,
            threshold=max(t or 0 for t in keys.values()),
            percent=use.percentage_used,
            used=_usd(use.used) if cost else f"{use.used:,}",
            limit=_usd(use.limit) if cost else f"{use.limit:,}",
        )

    async def _claim_and_send(self, candidate: _Candidate, now: datetime) -> None:
        moment = self._clock.monotonic()
        keys = {
            key: threshold
            for key, threshold in candidate.keys.items()
            if moment - self._claimed.get(key, -candidate.quiet_s - 1) > candidate.quiet_s
        }
        if not keys:
            return  # this worker has seen each of them claimed: no round trip
        claimed = await self._ledger.claim(candidate.alert, keys, quiet_s=candidate.quiet_s, now=now)
        self._remember(keys, moment)
        if not claimed:
            return  # another worker sent it
        top = max((keys[key] for key in claimed), key=lambda t: t or 0)
        alert = msgspec.structs.replace(candidate.alert, threshold=top if top else candidate.alert.threshold)
        try:
            culprits = await self._ledger.culprits(alert.account_id, candidate.since, now, CULPRITS_SHOWN * 2)
        except QueriesUnavailable:
            culprits = []
        alert = msgspec.structs.replace(alert, culprits=_top(culprits))
        log.warning("Limit alert: %s. Most tokens: %s", alert.headline, alert.culprits_text)
        self.sent += 1
        if self._send is not None:
            self._send(alert)

    def _remember(self, keys: Mapping[str, int | None], moment: float) -> None:
        if len(self._claimed) >= _REMEMBERED:
            self._claimed.clear()
        for key in keys:
            self._claimed[key] = moment


def _usd(value: float) -> str:
    """Dollars with cents, and the smaller digits a small budget needs: $12.50, $0.00032."""
    whole, _, cents = f"{value:,.6f}".rstrip("0").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _top(culprits: list[Culprit]) -> list[Culprit]:
    """The biggest conversations (or sessions) and the biggest sub-agents, a few of each."""
    main = [culprit for culprit in culprits if culprit.kind != "sub-agent"][:CULPRITS_SHOWN]
    agents = [culprit for culprit in culprits if culprit.kind == "sub-agent"][:CULPRITS_SHOWN]
    return sorted([*main, *agents], key=lambda culprit: -culprit.tokens)
