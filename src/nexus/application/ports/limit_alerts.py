"""What alerts before a limit need from storage: a claim on each alert shared by every worker,
the conversations that used a window most, and the alerts sent lately (for the dashboard)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from nexus.domain.limit_alerts import Culprit, LimitAlert


class SentAlert(msgspec.Struct, frozen=True, kw_only=True):
    measure: str
    account_id: str
    domain: str | None
    threshold: int | None
    headline: str
    sent_at: datetime


@runtime_checkable
class AlertLedger(Protocol):
    """Every method raises ``QueriesUnavailable`` when the database cannot be reached."""

    async def claim(
        self, alert: LimitAlert, keys: Mapping[str, int | None], *, quiet_s: float, now: datetime
    ) -> list[str]:
        """Claim ``keys`` (each with its threshold) for ``alert``: those no worker claimed in
        the last ``quiet_s`` seconds are claimed now and returned; two workers claiming at once
        get each key once."""
        ...

    async def culprits(self, account_id: str, since: datetime, until: datetime, limit: int) -> list[Culprit]:
        """The account's conversations, sub-agents and unlinked sessions with the most tokens
        in the window, most first."""
        ...

    async def recent(self, since: datetime, *, domain: str | None = None) -> list[SentAlert]:
        """Alerts claimed since ``since``, newest first."""
        ...
