"""Decoding JSON as the JSON grammar allows it, not only as far as msgspec goes.

msgspec refuses three things that are valid JSON text and that real clients send: a lone
surrogate escape (``"\\ud83d"``, which Claude Code writes when it cuts a string inside an
emoji), a number beyond a float's range (``1e400``) and an integer beyond 64 bits. Reading such
a body as "not JSON" would misclassify the request, lose its conversation facts, or make the
proxy answer 400 in its own words where Anthropic answers in its own.

So every decoder here tries msgspec first (fast, the common case) and falls back to the
standard library only when msgspec refuses (a ``str`` holding a lone surrogate included). The
fallback keeps lone surrogates in the ``str`` values (a typed decoder reads them as U+FFFD only
where msgspec must compare them: keys, literals), gives integers past 4,300 digits and floats
past the float range as ``Decimal``, and still refuses ``NaN``/``Infinity`` literals (not JSON).

Nesting deeper than the decoders' stacks (about a thousand levels) is valid JSON too, but no
decoder here can read it: it is refused like JSON that is not, with ``msgspec.DecodeError``,
rather than escaping as the ``RecursionError`` that msgspec raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

# The standard library refuses to convert longer digit strings to int (CVE-2020-10735).
_INT_DIGITS = 4000

_untyped = msgspec.json.Decoder()
# A str decoded from JSON holds a surrogate code point only where the JSON had a lone one.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


def _parse_float(text: str) -> float | Decimal:
    value = float(text)
    return value if math.isfinite(value) else Decimal(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _standard(data: bytes | str, refused: msgspec.DecodeError | UnicodeError) -> Any:
    """The standard library's reading; msgspec's own error (it says where) when it is no JSON either."""
    if isinstance(refused, UnicodeDecodeError):  # msgspec raises it as it is for bytes not UTF-8
        raise msgspec.DecodeError(f"JSON is not UTF-8: {refused.reason} at byte {refused.start}") from None
    try:
        return json.loads(data, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as invalid:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if isinstance(refused, UnicodeEncodeError):
            # A str holding a lone surrogate, which msgspec cannot even read: the library's words.
            raise msgspec.DecodeError(f"JSON is malformed: {invalid}") from None
        raise refused from None


def convert(value: Any, type_: type[T]) -> T:
    """``msgspec.convert`` of decoded JSON, lone surrogates included: where msgspec must compare
    a string (a key with the field names, a literal, a UUID) it encodes it and refuses one, so
    there they are read as U+FFFD. A key so read matches no field, as it would not have anyway."""
    try:
        return msgspec.convert(value, type_)
    except UnicodeEncodeError:
        return msgspec.convert(map_strings(value, without_lone_surrogates), type_)


def _too_deep() -> msgspec.DecodeError:
    return msgspec.DecodeError("JSON is nested too deeply to read")


def loads(data: bytes | str) -> Any:
    """Any JSON text as Python values; ``msgspec.DecodeError`` when it is not JSON (or nests
    too deeply to read)."""
    try:
        return _untyped.decode(data)
    except (msgspec.DecodeError, UnicodeError) as refused:  # UnicodeEncodeError: a str with a lone surrogate
        return _standard(data, refused)
    except RecursionError:
        raise _too_deep() from None


def decoder(type_: type[T]) -> Callable[[bytes | str], T]:
    """A decoder into ``type_`` (a msgspec type) that falls back like ``loads``.

    Raises ``msgspec.ValidationError`` when the JSON does not have the type's shape and
    ``msgspec.DecodeError`` when it is not JSON.
    """
    fast = msgspec.json.Decoder(type_)

    def decode(data: bytes | str) -> T:
        try:
            return fast.decode(data)
        except msgspec.ValidationError:
            raise
        except (msgspec.DecodeError, UnicodeError) as refused:
            return convert(_standard(data, refused), type_)
        except RecursionError:
            raise _too_deep() from None

    return decode


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with every string in it, keys included, passed through ``change``.

    A walk with a stack of its own, not recursion: the decoders read nesting to a thousand
    levels, and a recursive walk (two frames a level) ran out of Python's stack at five hundred.
    """
    pending: list[tuple[Any, Any]] = []
    root = _copied(value, change, pending)
    while pending:
        source, target = pending.pop()
        if isinstance(source, dict):
            for key, item in source.items():
                target[change(key) if isinstance(key, str) else key] = _copied(item, change, pending)
        else:
            target.extend(_copied(item, change, pending) for item in source)
    return root


def _copied(value: Any, change: Callable[[str], str], pending: list[tuple[Any, Any]]) -> Any:
    """A string changed, a scalar as it is, a container empty (filled when ``pending`` gets to it)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        target: dict[Any, Any] | list[Any] = {}
    elif isinstance(value, list | tuple):
        target = []
    else:
        return value
    pending.append((value, target))
    return target


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD: what an encoder to UTF-8 can write."""
    return text if text.isascii() else _LONE_SURROGATE.sub(REPLACEMENT, text)


def encodable(value: Any) -> Any:
    """Decoded JSON that any encoder can write back: lone surrogates become U+FFFD.

    For views (the API's parsed bodies, the dashboard); the exact bytes are kept elsewhere.
    """
    try:
        _encode(value)
    except UnicodeEncodeError:
        return map_strings(value, without_lone_surrogates)
    return value


_encode = msgspec.json.Encoder().encode
