"""JSON msgspec refuses but the grammar allows, read all the same."""

from decimal import Decimal
from typing import Literal

import msgspec
import pytest

from nexus.domain import json_text


def test_ordinary_json_is_msgspec_s_reading() -> None:
    assert json_text.loads(b'{"a":[1,2.5,"x",null,true]}') == {"a": [1, 2.5, "x", None, True]}


def test_a_lone_surrogate_stays_in_the_string() -> None:
    assert json_text.loads(rb'{"t":"cut \ud83d","u":"\udc00x","pair":"\ud83d\ude00"}') == {
        "t": "cut \ud83d",
        "u": "\udc00x",
        "pair": "\U0001f600",
    }


def test_numbers_past_float_and_int64_keep_their_digits() -> None:
    digits = "1" + "0" * 5000  # past the standard library's int conversion limit too
    decoded = json_text.loads(
        f'{{"big": 1e400, "tiny": -2.5e-400, "long": {digits}, "wide": 123456789012345678901234567890}}'
    )
    assert decoded["big"] == Decimal("1e400")
    assert decoded["tiny"] == -0.0
    assert decoded["long"] == Decimal(digits)
    assert decoded["wide"] == 123456789012345678901234567890


@pytest.mark.parametrize("text", [b"{", b"", b'{"a": NaN}', b"[Infinity]", b'"\xff"', b'{"a":1}x'])
def test_what_is_no_json_is_refused_with_msgspec_s_words(text: bytes) -> None:
    with pytest.raises(msgspec.DecodeError) as caught:
        json_text.loads(text)
    assert not isinstance(caught.value, msgspec.ValidationError)


class Shape(msgspec.Struct):
    text: str
    count: int = 0


def test_a_typed_decoder_falls_back_the_same_way() -> None:
    decode = json_text.decoder(Shape)
    assert decode(b'{"text":"ok","count":2}') == Shape("ok", 2)
    assert decode(rb'{"text":"\ud83d","ignored":1e400}') == Shape("\ud83d")


def test_a_typed_decoder_reports_the_wrong_shape_as_msgspec_does() -> None:
    decode = json_text.decoder(Shape)
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"text":1}')
    with pytest.raises(msgspec.ValidationError):
        decode(rb'{"text":"\ud83d","count":"many"}')
    with pytest.raises(msgspec.DecodeError):
        decode(b'{"text":')


def test_views_are_made_encodable_and_left_alone_when_they_are() -> None:
    clean = {"a": ["b", 1, None]}
    assert json_text.encodable(clean) is clean
    assert json_text.encodable({"k\ud83d": ["x\udc00", 2]}) == {"k\ufffd": ["x\ufffd", 2]}


@pytest.mark.parametrize("depth", [1100, 50_000])
def test_nesting_past_the_decoders_is_refused_as_no_json(depth: int) -> None:
    # msgspec raised RecursionError, which went past every caller's `except DecodeError`
    # (the recorder, the stream rebuild) and failed them (fuzzing).
    deep = b"[" * depth + b"]" * depth
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        json_text.loads(deep)
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        json_text.decoder(list[object])(deep)


def test_a_str_holding_a_lone_surrogate_is_read_like_its_escape() -> None:
    # msgspec encodes a str to UTF-8 before reading it and raised UnicodeEncodeError (fuzzing).
    assert json_text.loads('{"a":"\ud83d"}') == {"a": "\ud83d"}
    assert json_text.decoder(Shape)('{"text":"\ud83d"}') == Shape("\ud83d")
    with pytest.raises(msgspec.DecodeError):
        json_text.loads('{"a":"\ud83d"')


def test_a_typed_decoder_reads_a_lone_surrogate_key_or_literal_as_a_replacement() -> None:
    # msgspec.convert encodes keys and literals to compare them, and raised UnicodeEncodeError.
    class Tagged(msgspec.Struct):
        kind: Literal["a", "b"] = "a"

    assert json_text.decoder(Shape)(rb'{"text":"ok","\ud83d":1}') == Shape("ok")
    with pytest.raises(msgspec.ValidationError):
        json_text.decoder(Tagged)(rb'{"kind":"\ud83d"}')


def test_strings_are_mapped_at_any_depth_the_decoders_read() -> None:
    # The recursive walk ran out of Python's stack at 500 levels, half what msgspec reads; the
    # API's views and the stored rows of such bodies failed (fuzzing).
    depth = 900
    value = json_text.loads("[" * depth + r'{"\ud800":"\ude00","b":[1,"x"]}' + "]" * depth)
    mapped = json_text.encodable(value)
    for _ in range(depth):
        mapped = mapped[0]
    assert mapped == {"\ufffd": "\ufffd", "b": [1, "x"]}
    assert json_text.map_strings({"b": [1, ("t",)], "a": "y", 1: None}, str.upper) == {
        "B": [1, ["T"]],
        "A": "Y",
        1: None,
    }
