"""When a failed analysis is tried again."""

from __future__ import annotations

FIRST_DELAY_S = 1.0
GROWTH = 2.5
MAX_DELAY_S = 15.0


def retry_delay_s(attempt: int, jitter: float) -> float:
    """Seconds before attempt ``attempt + 1`` (``attempt`` >= 1 failed); ``jitter`` in [0, 1)
    spreads workers retrying together by up to 30 %."""
    base = min(FIRST_DELAY_S * GROWTH ** max(0, attempt - 1), MAX_DELAY_S)
    return base * (1 + 0.3 * jitter)
