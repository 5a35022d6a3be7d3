from decimal import Decimal

import pytest

from nexus.domain.pricing import PRICE_TABLE_VERSION, PRICES, canonical_model, cost_usd, price_for
from nexus.domain.usage import TokenUsage

MILLION = 1_000_000


def test_the_worked_example_of_the_wire_reference() -> None:
    usage = TokenUsage(
        input_tokens=4,
        output_tokens=71,
        cache_creation_input_tokens=1830,
        cache_read_input_tokens=18211,
        cache_creation_5m_input_tokens=0,
        cache_creation_1h_input_tokens=1830,
    )
    assert cost_usd("claude-sonnet-5", usage) == Decimal("0.0116802")


def test_cost_is_quantized_to_a_nano_dollar() -> None:
    cost = cost_usd("claude-haiku-4-5", TokenUsage(input_tokens=1))
    assert cost == Decimal("0.000001000")
    assert cost.as_tuple().exponent == -9


def test_a_retired_model_is_still_priced() -> None:
    assert cost_usd("claude-opus-4-1-20250805", TokenUsage(input_tokens=MILLION, output_tokens=MILLION)) == Decimal(90)
    assert cost_usd("claude-3-5-haiku-20241022", TokenUsage(input_tokens=MILLION)) == Decimal("0.8")


@pytest.mark.parametrize("model", [None, "", "claude-unknown-9", "gpt-4o", "claude-opus-4-20990101"])
def test_an_unknown_model_has_no_price_not_a_zero_one(model: str | None) -> None:
    assert price_for(model) is None
    assert cost_usd(model, TokenUsage(input_tokens=10)) is None


def test_ids_aliases_and_dated_snapshots_resolve_to_one_entry() -> None:
    assert price_for("claude-sonnet-4-5") is price_for("claude-sonnet-4-5-20250929")
    assert canonical_model("claude-sonnet-4-5") == "claude-sonnet-4-5-20250929"
    assert canonical_model("claude-haiku-4-5-20261231") == "claude-haiku-4-5-20251001"
    assert canonical_model("claude-opus-4-6") == "claude-opus-4-6"


def test_every_listed_model_is_in_the_table() -> None:
    listed = {
        "claude-fable-5",
        "claude-mythos-5",
        "claude-opus-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-opus-4-5-20251101",
        "claude-opus-4-5",
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-5",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
        "claude-haiku-4-5",
        "claude-3-5-haiku-20241022",
    }
    assert set(PRICES) == listed
    assert PRICE_TABLE_VERSION == "2026-08-21"


def test_cache_multipliers_follow_the_input_price() -> None:
    rates = PRICES["claude-opus-5"].rates
    assert (rates.input, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read, rates.output) == (
        Decimal(5),
        Decimal("6.25"),
        Decimal(10),
        Decimal("0.5"),
        Decimal(25),
    )


def big_prompt(total: int) -> TokenUsage:
    return TokenUsage(
        input_tokens=total - 150_000, cache_read_input_tokens=100_000, cache_creation_input_tokens=50_000,
        output_tokens=10_000,
    )  # fmt: skip


def test_long_context_premium_for_sonnet_4_5_above_200k() -> None:
    # input 50 001 x $6, 5 m write 50 000 x $7.50, read 100 000 x $0.60, output 10 000 x $22.50
    expected = (
        Decimal(50_001) * 6 + 50_000 * Decimal("7.5") + 100_000 * Decimal("0.6") + 10_000 * Decimal("22.5")
    ) / MILLION
    assert cost_usd("claude-sonnet-4-5", big_prompt(200_001)) == expected.quantize(Decimal("1e-9"))
    assert cost_usd("claude-sonnet-4-20250514", big_prompt(200_001)) == expected.quantize(Decimal("1e-9"))


def test_no_premium_at_exactly_200k_nor_for_sonnet_4_6() -> None:
    standard = (Decimal(50_000) * 3 + 50_000 * Decimal("3.75") + 100_000 * Decimal("0.3") + 10_000 * 15) / MILLION
    assert cost_usd("claude-sonnet-4-5", big_prompt(200_000)) == standard
    above = (Decimal(50_001) * 3 + 50_000 * Decimal("3.75") + 100_000 * Decimal("0.3") + 10_000 * 15) / MILLION
    assert cost_usd("claude-sonnet-4-6", big_prompt(200_001)) == above


def test_one_hour_writes_are_billed_at_twice_the_input_price() -> None:
    both = TokenUsage(
        cache_creation_input_tokens=3 * MILLION,
        cache_creation_5m_input_tokens=MILLION,
        cache_creation_1h_input_tokens=2 * MILLION,
    )
    assert cost_usd("claude-sonnet-4-6", both) == Decimal("3.75") + 2 * 6


def test_without_the_split_all_writes_are_five_minute_ones() -> None:
    unsplit = TokenUsage(cache_creation_input_tokens=MILLION)
    assert cost_usd("claude-sonnet-4-6", unsplit) == Decimal("3.75")


def test_with_half_the_split_the_rest_is_the_other_ttl() -> None:
    only_1h = TokenUsage(cache_creation_input_tokens=3 * MILLION, cache_creation_1h_input_tokens=MILLION)
    assert cost_usd("claude-sonnet-4-6", only_1h) == 2 * Decimal("3.75") + 6
    only_5m = TokenUsage(cache_creation_input_tokens=3 * MILLION, cache_creation_5m_input_tokens=MILLION)
    assert cost_usd("claude-sonnet-4-6", only_5m) == Decimal("3.75") + 2 * 6
