from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from nexus.application.ports.usage_queries import (
    AccountTotals,
    BucketTotals,
    DayTotals,
    DomainTotals,
    RateLimitSnapshot,
    TokenTotals,
    UsageFilter,
    UsageUnavailable,
)
from nexus.application.use_cases.account_usage import InvalidUsageQuery, UsageReports
from tests.fakes import FixedClock, InMemoryCredentialStore

NOW = datetime(2026, 11, 23, 10, 7, 30, tzinfo=UTC)


class FakeQueries:
    """Answers from fixed totals and records each window asked for."""

    def __init__(self, five_hours: TokenTotals, seven_days: TokenTotals | None = None) -> None:
        self.five_hours = five_hours
        self.seven_days = seven_days or five_hours
        self.windows: list[tuple[datetime, datetime]] = []

    async def accounts(self, since: datetime, until: datetime) -> list[AccountTotals]:
        self.windows.append((since, until))
        domains = [DomainTotals(domain="team.example", totals=self.five_hours)]
        return [AccountTotals(account_id="acc_team", totals=self.five_hours, domains=domains)]

    async def totals(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> TokenTotals:
        self.windows.append((since, until))
        return self.seven_days if until - since > timedelta(hours=5) else self.five_hours

    async def daily(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> list[DayTotals]:
        self.windows.append((since, until))
        return [DayTotals(day=date(2026, 11, 22), totals=self.five_hours)]

    async def buckets(
        self, account_id: str, since: datetime, until: datetime, interval_minutes: int, where: UsageFilter
    ) -> list[BucketTotals]:
        self.windows.append((since, until))
        return [BucketTotals(start=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), totals=self.five_hours)]

    async def rate_limits(self, account_ids: Sequence[str]) -> dict[str, RateLimitSnapshot]:
        return {}


def reports(queries: FakeQueries | None, documents: dict[str, dict[str, object]] | None = None) -> UsageReports:
    return UsageReports(
        queries=queries,
        credentials=InMemoryCredentialStore(documents or {}),  # type: ignore[arg-type]
        clock=FixedClock(int(NOW.timestamp() * 1000)),
    )


def key_file(account_id: str, **limits: object) -> dict[str, object]:
    return {"type": "api_key", "api_key": "k", "accountId": account_id, "limits": limits}


async def test_without_storage_every_report_says_so() -> None:
    with pytest.raises(UsageUnavailable, match="storage is off"):
        await reports(None).accounts()
    with pytest.raises(UsageUnavailable, match="storage is off"):
        await reports(None).current("acc", 300, UsageFilter())


async def test_limits_give_the_share_used_and_never_a_negative_remainder() -> None:
    used = TokenTotals(requests=3, output_tokens=1_500, cost_usd=Decimal("12.5"))
    week = TokenTotals(requests=9, output_tokens=9_000, cost_usd=Decimal("30"))
    documents = {
        "a.example": key_file("acc_team", five_hour_output_tokens=1_000, seven_day_cost_usd=120),
        "b.example": key_file("acc_team", five_hour_output_tokens=99),  # a later file: ignored
    }
    [account] = (await reports(FakeQueries(used, week), documents).accounts()).accounts
    assert account.limits["five_hour_output_tokens"].percentage_used == 150.0
    assert account.limits["five_hour_output_tokens"].remaining == 0
    assert account.limits["seven_day_cost_usd"].used == 30.0
    assert account.limits["seven_day_cost_usd"].remaining == 90.0
    assert account.limits["seven_day_cost_usd"].percentage_used == 25.0
    assert account.totals.cost_usd == "12.500000000"


async def test_an_account_without_limits_reports_none() -> None:
    [account] = (await reports(FakeQueries(TokenTotals(requests=1))).accounts()).accounts
    assert account.limits == {}
    assert account.anthropic is None


async def test_series_buckets_are_aligned_and_gaps_are_zeros() -> None:
    queries = FakeQueries(TokenTotals(requests=2, output_tokens=10))
    series = await reports(queries).series("acc_team", 5, 60, UsageFilter())
    starts = [bucket.start for bucket in series.buckets]
    assert starts == [datetime(2026, 11, 23, hour, tzinfo=UTC) for hour in range(5, 11)]
    assert [bucket.totals.requests for bucket in series.buckets] == [0, 0, 0, 0, 2, 0]
    assert queries.windows == [(starts[0], NOW)]


async def test_days_run_to_today_with_zeros() -> None:
    daily = await reports(FakeQueries(TokenTotals(requests=4))).daily("acc_team", 3, UsageFilter())
    assert [(entry.date, entry.totals.requests) for entry in daily.daily] == [
        (date(2026, 11, 21), 0), (date(2026, 11, 22), 4), (date(2026, 11, 23), 0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.current("", 300, UsageFilter()), "account_id is required"),
        (lambda r: r.current("a", 0, UsageFilter()), "window_minutes must be between 1 and"),
        (lambda r: r.daily("a", 367, UsageFilter()), "days must be between 1 and 366"),
        (lambda r: r.series("a", 100, 5, UsageFilter()), "1201 buckets; at most 1000"),
    ],
)
async def test_parameters_out_of_range_are_refused_before_any_query(call: object, message: str) -> None:
    queries = FakeQueries(TokenTotals())
    with pytest.raises(InvalidUsageQuery, match=message):
        await call(reports(queries))  # type: ignore[operator]
    assert queries.windows == []
