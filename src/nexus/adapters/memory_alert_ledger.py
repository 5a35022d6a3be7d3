"""The alert ledger without storage: claims held by this process alone (with several workers,
each sends its own), no recorded conversations to name, and only this process's alerts listed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from nexus.application.ports.limit_alerts import SentAlert
from nexus.domain.limit_alerts import Culprit, LimitAlert

_KEPT = 1000


class MemoryAlertLedger:
    def __init__(self) -> None:
        self._claims: dict[str, SentAlert] = {}

    async def claim(
        self, alert: LimitAlert, keys: Mapping[str, int | None], *, quiet_s: float, now: datetime
    ) -> list[str]:
        claimed = []
        for key, threshold in keys.items():
            previous = self._claims.get(key)
            if previous is not None and (now - previous.sent_at).total_seconds() < quiet_s:
                continue
            if len(self._claims) >= _KEPT:
                self._claims.pop(next(iter(self._claims)))
            self._claims[key] = SentAlert(
                measure=alert.measure,
                account_id=alert.account_id,
                domain=alert.domain,
                threshold=threshold,
                headline=alert.headline,
                sent_at=now,
            )
            claimed.append(key)
        return claimed

    async def culprits(self, account_id: str, since: datetime, until: datetime, limit: int) -> list[Culprit]:
        return []

    async def recent(self, since: datetime, *, domain: str | None = None) -> list[SentAlert]:
        found = [a for a in self._claims.values() if a.sent_at >= since and (domain is None or a.domain == domain)]
        return sorted(found, key=lambda a: a.sent_at, reverse=True)
