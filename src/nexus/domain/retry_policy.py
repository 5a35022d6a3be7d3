"""When a failed upstream attempt is worth another try, and how long to wait first.

Only failures that happen before any byte reached the client are candidates; the proxy
never retries a response it has started relaying.
"""

from __future__ import annotations

import email.utils

import msgspec

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 529})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter, within a count and a total-time budget.

    ``retry-after`` (or ``retry-after-ms``) from upstream is honoured when it fits the
    budget and is at most ``max_retry_after_s``; a longer one means "answer now": the client
    gets upstream's response at once and can decide (Claude Code has its own retry loop).
    """

    max_retries: int = 2
    budget_s: float = 20.0
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 10.0

    def delay_before_retry(
        self, *, retries_done: int, elapsed_s: float, retry_after_s: float | None, jitter: float
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now.

        ``jitter`` is a random number in [0, 1).
        """
        if retries_done >= self.max_retries:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            delay = retry_after_s
        else:
            ceiling = min(self.max_delay_s, self.base_delay_s * 2**retries_done)
            delay = ceiling / 2 + ceiling / 2 * jitter  # "equal jitter": never retry instantly
        if elapsed_s + delay > self.budget_s:
            return None
        return delay


def is_retryable_status(status: int, should_retry: bytes | None) -> bool:
    """5xx and 529 are worth retrying; 429 is not (a subscription's limit can last hours).

    Anthropic's ``x-should-retry`` header overrides the status either way.
    """
    if should_retry is not None:
        return should_retry.strip().lower() == b"true" and status >= 500
    return status in RETRYABLE_STATUSES


def parse_retry_after(retry_after: bytes | None, retry_after_ms: bytes | None, now_s: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` first, then ``retry-after`` (seconds or HTTP date)."""
    for raw, scale in ((retry_after_ms, 1000.0), (retry_after, 1.0)):
        if raw is None:
            continue
        text = raw.decode("latin-1").strip()
        try:
            return max(0.0, float(text) / scale)
        except ValueError:
            pass
        if scale == 1.0:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                continue
            return max(0.0, when.timestamp() - now_s)
    return None
