"""An upstream attempt that did not become the answer: what the exchange records of its
retries and pool failovers, so they are visible instead of only logged."""

from __future__ import annotations

import msgspec


class UpstreamAttempt(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # 1 for the first attempt
    status: int | None  # None when upstream never answered (connection error, timeout)
    reason: str  # why it was not the answer: "answered 529", "connection error: ...", "429: failed over"
    wait_s: float  # the pause before the next attempt
    account_id: str | None = None  # the credential it went with, when a pool chose it
    circuit: str | None = None  # the circuit breaker's state right after it: closed, open, half-open
