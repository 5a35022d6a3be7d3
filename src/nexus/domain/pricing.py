"""What a response cost in USD, from a pinned and versioned list price table.

The table is the public pricing page of ``PRICE_TABLE_VERSION``; prices change rarely and a
stored cost must be reproducible, so the table is data in code, not fetched. Amounts are
``Decimal`` so that per-request costs add up exactly in SQL ``numeric`` columns; binary
floats would drift by fractions of a cent over millions of rows.

Not modelled (none is visible from the usage counters alone): Batch API discount, the
``inference_geo: "us"`` surcharge, fast mode, and per-request server-tool fees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

import msgspec

from nexus.domain.usage import TokenUsage

PRICE_TABLE_VERSION = "2026-08-21"

_PER_TOKEN = Decimal(1_000_000)  # prices are per million tokens
# A nano-dollar: far below any single token's price; the columns are numeric(20, 9) to match.
COST_QUANTUM = Decimal("1e-9")
_DATE_SUFFIX = re.compile(r"(.+)-\d{8}")


class Rates(msgspec.Struct, frozen=True, kw_only=True):
    """USD per million tokens for each kind of token a request is billed for."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal


class LongContextTier(msgspec.Struct, frozen=True, kw_only=True):
    """Rates that replace the standard ones for the whole request above a prompt size."""

    threshold_tokens: int
    rates: Rates


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True):
    """The list price of one model; ``model`` is its canonical (dated, when one exists) id."""

    model: str
    rates: Rates
    long_context: LongContextTier | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates that apply to a request whose prompt has ``prompt_tokens`` tokens.

        Args:
            prompt_tokens: Input plus cache-creation plus cache-read tokens.

        Returns:
            The long-context rates when the prompt exceeds the tier's threshold, else the
            standard rates.
        """
        if self.long_context is not None and prompt_tokens > self.long_context.threshold_tokens:
            return self.long_context.rates
        return self.rates


def _rates(input_: str, output: str) -> Rates:
    # The cache multipliers are uniform across models (5 m write 1.25x, 1 h write 2x,
    # read 0.1x input); deriving them keeps the table from disagreeing with itself.
    base = Decimal(input_)
    return Rates(
        input=base,
        output=Decimal(output),
        cache_write_5m=base * Decimal("1.25"),
        cache_write_1h=base * 2,
        cache_read=base * Decimal("0.1"),
    )


def _long_context_premium(standard: Rates) -> LongContextTier:
    # Sonnet 4 and 4.5 with the 1 M context beta: input-side x2 and output x1.5 once the
    # prompt passes 200 k tokens. Models from 4.6 on bill the full window at standard rates.
    two, one_and_half = Decimal(2), Decimal("1.5")
    return LongContextTier(
        threshold_tokens=200_000,
        rates=Rates(
            input=standard.input * two,
            output=standard.output * one_and_half,
            cache_write_5m=standard.cache_write_5m * two,
            cache_write_1h=standard.cache_write_1h * two,
            cache_read=standard.cache_read * two,
        ),
    )


_OPUS_4 = _rates("15", "75")
_OPUS_45 = _rates("5", "25")
_SONNET_4 = _rates("3", "15")

# Each row: every id and alias the API accepts or answers with, then the price. The first
# id is the canonical one (what responses carry).
_TABLE: tuple[tuple[tuple[str, ...], Rates, LongContextTier | None], ...] = (
    (("claude-fable-5",), _rates("10", "50"), None),
    (("claude-mythos-5",), _rates("10", "50"), None),
    (("claude-opus-5",), _OPUS_45, None),
    (("claude-opus-4-8",), _OPUS_45, None),
    (("claude-opus-4-7",), _OPUS_45, None),
    (("claude-opus-4-6",), _OPUS_45, None),
    (("claude-opus-4-5-20251101", "claude-opus-4-5"), _OPUS_45, None),
    (("claude-opus-4-1-20250805",), _OPUS_4, None),  # retired on the first-party API
    (("claude-opus-4-20250514",), _OPUS_4, None),  # retired on the first-party API
    (("claude-sonnet-5",), _rates("2", "10"), None),
    (("claude-sonnet-4-6",), _SONNET_4, None),
    (("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"), _SONNET_4, _long_context_premium(_SONNET_4)),
    (("claude-sonnet-4-20250514",), _SONNET_4, _long_context_premium(_SONNET_4)),  # retired
    (("claude-haiku-4-5-20251001", "claude-haiku-4-5"), _rates("1", "5"), None),
    (("claude-3-5-haiku-20241022",), _rates("0.80", "4"), None),  # retired on the first-party API
)


def _by_id(table: tuple[tuple[tuple[str, ...], Rates, LongContextTier | None], ...]) -> Mapping[str, ModelPrice]:
    prices: dict[str, ModelPrice] = {}
    for ids, rates, long_context in table:
        prices.update(dict.fromkeys(ids, ModelPrice(model=ids[0], rates=rates, long_context=long_context)))
    # Read-only: the table is pinned to PRICE_TABLE_VERSION and must not be patched at run time.
    return MappingProxyType(prices)


PRICES = _by_id(_TABLE)


def price_for(model: str | None) -> ModelPrice | None:
    """The list price of a model, by id, alias or a dated snapshot of a listed alias.

    Args:
        model: A model id as sent in a request or returned in a response.

    Returns:
        The price entry, or None when the model is not in the table.
    """
    if not model:
        return None
    if (price := PRICES.get(model)) is not None:
        return price
    # A dated snapshot not in the table (``claude-haiku-4-5-20261231``) is priced as its
    # alias: a snapshot keeps its family's price.
    match = _DATE_SUFFIX.fullmatch(model)
    return PRICES.get(match.group(1)) if match else None


def canonical_model(model: str | None) -> str | None:
    """The canonical id of a model (``claude-sonnet-4-5`` -> ``claude-sonnet-4-5-20250929``).

    Args:
        model: Any id or alias :func:`price_for` accepts.

    Returns:
        The first id of the model's table row, or None when the model is unknown.
    """
    price = price_for(model)
    return price.model if price is not None else None


def cost_usd(model: str | None, usage: TokenUsage) -> Decimal | None:
    """The list-price cost of one response.

    Cache creation is split by TTL when the response said how (``cache_creation``);
    otherwise all of it is billed as 5-minute writes, the API's default TTL.

    Args:
        model: The model that answered (the response's ``model``, or the request's).
        usage: The final token usage of the response.

    Returns:
        USD, quantized to 1e-9; None when the model is unknown, so that a missing price is
        never mistaken for a free request.
    """
    price = price_for(model)
    if price is None:
        return None
    prompt_tokens = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    rates = price.rates_for(prompt_tokens)
    write_5m, write_1h = _cache_writes(usage)
    total = (
        usage.input_tokens * rates.input
        + usage.output_tokens * rates.output
        + write_5m * rates.cache_write_5m
        + write_1h * rates.cache_write_1h
        + usage.cache_read_input_tokens * rates.cache_read
    )
    return (total / _PER_TOKEN).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def _cache_writes(usage: TokenUsage) -> tuple[int, int]:
    five_m, one_h = usage.cache_creation_5m_input_tokens, usage.cache_creation_1h_input_tokens
    total = usage.cache_creation_input_tokens
    if five_m is None and one_h is None:
        return total, 0
    # With only one half of the split known, the rest of the total is the other half.
    if five_m is None:
        five_m = max(total - (one_h or 0), 0)
    if one_h is None:
        one_h = max(total - five_m, 0)
    return five_m, one_h


def cost_text(value: Decimal | float | int | str) -> str:
    """A cost in USD as every API answer and export writes it: nine decimals, never an exponent
    (``str(Decimal("0E-9"))`` would be ``"0E-9"``)."""
    return f"{Decimal(value).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN):f}"


def optional_cost_text(value: Decimal | None) -> str | None:
    return None if value is None else cost_text(value)
