"""How an exchange ended, and which endings count as errors (one rule for every count and view)."""

from __future__ import annotations

from typing import Literal

# The terminal state of every recorded exchange (the ``state`` column, the API's ``state``).
Outcome = Literal["complete", "upstream_error", "client_cancelled", "truncated", "rejected"]

# Endings that are errors even with a 2xx status: an ``event: error`` inside a stream, or a
# stream upstream broke off. A client that hung up is not an error of ours or upstream's.
ERROR_OUTCOMES: frozenset[str] = frozenset({"upstream_error", "truncated"})


def is_error(status: int, outcome: str | None) -> bool:
    """An error status (the proxy's own rejections included) or an error ending."""
    return status >= 400 or outcome in ERROR_OUTCOMES
