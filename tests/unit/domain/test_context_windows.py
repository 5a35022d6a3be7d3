import pytest

from nexus.domain import context_windows
from nexus.domain.context_windows import (
    DEFAULT_CONTEXT_WINDOW,
    LONG_CONTEXT_WINDOW,
    context_window,
    fill_level,
    fill_percent,
)
from nexus.domain.pricing import PRICES


@pytest.mark.parametrize(
    ("model", "betas", "window"),
    [
        ("claude-sonnet-5", [], LONG_CONTEXT_WINDOW),
        ("claude-opus-4-6", [], LONG_CONTEXT_WINDOW),
        ("claude-haiku-4-5", [], DEFAULT_CONTEXT_WINDOW),
        ("claude-haiku-4-5-20251001", ["context-1m-2025-08-07"], DEFAULT_CONTEXT_WINDOW),  # no 1 M for Haiku
        ("claude-sonnet-4-5", [], DEFAULT_CONTEXT_WINDOW),
        ("claude-sonnet-4-5", ["oauth-2025-04-20,context-1m-2025-08-07"], LONG_CONTEXT_WINDOW),
        ("claude-sonnet-4-20250514", ["claude-code-20250219", " context-1m-2026-01-01 "], LONG_CONTEXT_WINDOW),
        ("claude-sonnet-4-5-20991231", ["context-1m-2025-08-07"], LONG_CONTEXT_WINDOW),  # a later snapshot
        ("claude-opus-4-5", ["context-1m-2025-08-07"], DEFAULT_CONTEXT_WINDOW),
        ("some-other-model", [], DEFAULT_CONTEXT_WINDOW),
        (None, [], DEFAULT_CONTEXT_WINDOW),
    ],
)
def test_the_window_of_a_model_and_its_betas(model: str | None, betas: list[str], window: int) -> None:
    assert context_window(model, betas) == window


def test_every_model_named_is_in_the_price_table() -> None:
    named = context_windows._LONG_BY_DEFAULT | context_windows._LONG_WITH_BETA
    assert named <= {price.model for price in PRICES.values()}, "canonical ids, as the price table spells them"


LEVELS = [(0, "ok"), (139_999, "ok"), (140_000, "warn"), (179_999, "warn"), (180_000, "full"), (250_000, "full")]


@pytest.mark.parametrize(("tokens", "level"), LEVELS)
def test_the_bar_turns_yellow_at_70_and_red_at_90_percent(tokens: int, level: str) -> None:
    assert fill_level(fill_percent(tokens, 200_000)) == level
