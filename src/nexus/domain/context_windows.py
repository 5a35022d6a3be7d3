"""How many tokens of prompt a model takes (its context window), and how full a prompt is.

Keyed by the canonical ids of the price table (``pricing.canonical_model``), so an alias or a
dated snapshot gets its family's window and a model added to the prices cannot be missing here
by a different spelling. Source: the models overview of ``pricing.PRICE_TABLE_VERSION``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from nexus.domain.pricing import canonical_model

DEFAULT_CONTEXT_WINDOW = 200_000  # every model before 4.6, and any model the table does not know
LONG_CONTEXT_WINDOW = 1_000_000
# ``context-1m-2025-08-07`` and whatever date a later revision of the beta carries.
LONG_CONTEXT_BETA_PREFIX = "context-1m-"

# A full window from the start: 4.6 and later (billed at standard rates throughout).
_LONG_BY_DEFAULT = frozenset(
    {
        "claude-fable-5",
        "claude-opus-5",
        "claude-sonnet-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-sonnet-4-6",
    }
)
# 200 k unless the request asks for the 1 M context beta.
_LONG_WITH_BETA = frozenset({"claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514"})
# claude-mythos-5 is left at the default: its window is not published with its price.

WARN_PERCENT = 70.0  # the bar turns yellow here...
FULL_PERCENT = 90.0  # ...and red here (the original dashboard's battery)
FillLevel = Literal["ok", "warn", "full"]


def context_window(model: str | None, betas: Iterable[str] = ()) -> int:
    """The context window of ``model`` for a request that sent ``betas`` (``anthropic-beta``
    values, one per entry or comma-separated)."""
    canonical = canonical_model(model)
    if canonical in _LONG_BY_DEFAULT:
        return LONG_CONTEXT_WINDOW
    if canonical in _LONG_WITH_BETA and _asks_long_context(betas):
        return LONG_CONTEXT_WINDOW
    return DEFAULT_CONTEXT_WINDOW


def fill_percent(tokens: int, window: int) -> float:
    """The share of the window a prompt of ``tokens`` uses (above 100 when it overflows)."""
    return 100.0 * tokens / window if window > 0 else 0.0


def fill_level(percent: float) -> FillLevel:
    if percent >= FULL_PERCENT:
        return "full"
    if percent >= WARN_PERCENT:
        return "warn"
    return "ok"


def _asks_long_context(betas: Iterable[str]) -> bool:
    return any(name.strip().startswith(LONG_CONTEXT_BETA_PREFIX) for value in betas for name in value.split(","))
