"""Alerts before a limit: which thresholds a measure has crossed, the keys that make each alert
happen once, and how an alert reads.

A measure is one thing that can run out: Anthropic's five-hour window (its unified headers),
an operator's limit on an account's trailing 5 hours or 7 days, a domain's daily budget, or
Anthropic's own warning status. Each crossed threshold has a key; the first worker to claim a
key sends the alert, so it is sent once however many workers saw the traffic. A key names its
window where the window has a name (Anthropic's reset time, the UTC day); a trailing window has
none, so its keys are quiet for the window's length once claimed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

import msgspec

DEFAULT_THRESHOLDS = (80, 90, 100)
MAX_THRESHOLD = 1000
CULPRITS_SHOWN = 3

Measure = Literal["anthropic_5h", "anthropic_status", "limit", "daily_budget"]


class InvalidThresholds(ValueError):
    pass


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"80,90,100"`` -> ``(80, 90, 100)``: whole percentages, sorted, each once."""
    found: set[int] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= MAX_THRESHOLD:
            raise InvalidThresholds(f"{part!r} is not a whole percentage from 1 to {MAX_THRESHOLD}")
        found.add(int(part))
    if not found:
        raise InvalidThresholds("at least one threshold is needed, e.g. 80,90,100")
    return tuple(sorted(found))


def crossed(percent: float, thresholds: tuple[int, ...]) -> list[int]:
    """The thresholds ``percent`` has reached, lowest first."""
    return [threshold for threshold in thresholds if percent >= threshold]


class Culprit(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation (or a sub-agent's, or a not yet linked session's) share of a window."""

    kind: Literal["conversation", "sub-agent", "session"]
    id: str
    title: str | None
    requests: int
    tokens: int  # input + output + cache writes + cache reads


class LimitAlert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert: ``measure`` of ``account_id`` reached ``threshold`` % (or, for Anthropic's
    status, became ``status``)."""

    measure: Measure
    account_id: str
    domain: str | None
    name: str  # what ran toward its limit, for people: "5 h output tokens", "daily cost"
    threshold: int | None
    percent: float | None
    used: str | None
    limit: str | None
    status: str | None = None
    resets_at: datetime | None = None
    culprits: list[Culprit] = msgspec.field(default_factory=list)

    @property
    def headline(self) -> str:
        """One line, for the log and as Slack's fallback text."""
        who = f"account {self.account_id}" + (f" ({self.domain})" if self.domain else "")
        if self.measure == "anthropic_status":
            text = f"Anthropic reports {who} as {self.status}"
        else:
            share = f"{self.percent:.0f} %" if self.percent is not None else "?"
            text = f"{who} reached {self.threshold} % of its {self.name}: {share} used"
            if self.used is not None and self.limit is not None:
                text += f" ({self.used} of {self.limit})"
        if self.resets_at is not None:
            text += f", resets {self.resets_at.astimezone(UTC).isoformat(timespec='minutes').replace('+00:00', 'Z')}"
        return text

    @property
    def culprits_text(self) -> str:
        return "; ".join(_culprit(culprit) for culprit in self.culprits) or "no recorded conversations"


def _culprit(culprit: Culprit) -> str:
    label = culprit.title or culprit.id
    return f"{culprit.kind} {label!r}: {culprit.tokens:,} tokens in {culprit.requests} requests"


def anthropic_window_key(account_id: str, window: int | None, threshold: int) -> str:
    return f"anthropic_5h|{account_id}|{window or 'unknown'}|{threshold}"


def anthropic_status_key(account_id: str, status: str, window: int | None) -> str:
    return f"anthropic_status|{account_id}|{status}|{window or 'unknown'}"


def limit_key(account_id: str, limit_name: str, threshold: int) -> str:
    return f"limit|{account_id}|{limit_name}|{threshold}"


def budget_key(domain: str, day: date, threshold: int) -> str:
    return f"daily_budget|{domain}|{day.isoformat()}|{threshold}"
