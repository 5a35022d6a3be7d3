"""Token usage per account, summed from the recorded exchanges, and Anthropic's latest view.

An account is the credential file's ``accountId``, else the domain. Windows are half-open:
``since`` inclusive, ``until`` exclusive, on the time each request arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

import msgspec

from nexus.domain.rate_limits import UnifiedRateLimit


class UsageUnavailable(Exception):
    """Nothing can be read: storage is off, or the database cannot be reached."""


class TokenTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over a set of exchanges. Errors count as requests and add no tokens.

    ``unpriced_requests`` counts exchanges with token usage but no cost (a model missing from
    the price table): ``cost_usd`` leaves them out.
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_requests: int = 0


class DomainTotals(msgspec.Struct, frozen=True, kw_only=True):
    domain: str | None
    totals: TokenTotals


class AccountTotals(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    totals: TokenTotals
    domains: list[DomainTotals]


class DayTotals(msgspec.Struct, frozen=True, kw_only=True):
    day: date  # UTC
    totals: TokenTotals


class BucketTotals(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    totals: TokenTotals


class RateLimitSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An account's newest unified rate-limit headers, from exchange ``exchange_id``."""

    account_id: str
    domain: str | None
    seen_at: datetime
    status_since: datetime
    exchange_id: uuid.UUID
    limit: UnifiedRateLimit


class UsageFilter(msgspec.Struct, frozen=True, kw_only=True):
    """``model`` matches the model that answered or the one requested."""

    domain: str | None = None
    model: str | None = None


@runtime_checkable
class UsageQueries(Protocol):
    """Every method raises ``UsageUnavailable`` when the database cannot be read."""

    async def accounts(self, since: datetime, until: datetime) -> list[AccountTotals]:
        """Every account with an exchange in the window, with its per-domain breakdown."""
        ...

    async def totals(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> TokenTotals: ...

    async def daily(self, account_id: str, since: datetime, until: datetime, where: UsageFilter) -> list[DayTotals]:
        """Per UTC day, only the days with exchanges, oldest first."""
        ...

    async def buckets(
        self, account_id: str, since: datetime, until: datetime, interval_minutes: int, where: UsageFilter
    ) -> list[BucketTotals]:
        """Per bucket of ``interval_minutes`` aligned on the Unix epoch, only the buckets with
        exchanges, oldest first."""
        ...

    async def rate_limits(self, account_ids: Sequence[str]) -> dict[str, RateLimitSnapshot]:
        """The latest snapshot of each of these accounts that has one."""
        ...
