"""Values PostgreSQL takes: text and JSON that ``text`` and ``jsonb`` columns would refuse, made storable.

PostgreSQL's ``text`` and ``jsonb`` hold UTF-8 without NUL, so three things valid in a JSON
body cannot be stored as they are: the character U+0000 (``"\\u0000"``), a lone surrogate
(``"\\ud83d"``, which Claude Code sends when it cuts a string inside an emoji) and, in ``jsonb``
only, numbers past its range. One such value used to fail its whole batch.

What these columns hold is a readable view (titles, the rebuilt response, headers); the exact
bytes of both bodies are kept in ``bytea`` columns and are never changed. So in the views:
- U+0000 and lone surrogates become U+FFFD, the replacement character;
- a number JSON allows but ``float`` cannot hold arrives here as a ``Decimal`` (see
  ``nexus.domain.json_text``) and is written as a JSON string of its digits.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from nexus.application.recording.row import ExchangeRow
from nexus.domain.json_text import REPLACEMENT, map_strings

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_encode = msgspec.json.Encoder().encode  # Decimal as a string: jsonb never refuses one


def pg_text(value: str) -> str:
    """``value`` with what a ``text`` column refuses replaced (the common case: itself, at once)."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def pg_optional_text(value: str | None) -> str | None:
    return None if value is None else pg_text(value)


def pg_json(value: Any) -> str:
    """The ``jsonb`` text of ``value`` (the engine's JSON serializer)."""
    try:
        encoded = _encode(value)
    except UnicodeEncodeError:  # a lone surrogate in a string
        return _encode(_storable(value)).decode()
    if b"\\u0000" in encoded:  # may also be an escaped backslash before "u0000": then nothing changes
        return _encode(_storable(value)).decode()
    return encoded.decode()


def _storable(value: Any) -> Any:
    return map_strings(msgspec.to_builtins(value), pg_text)


def pg_row(row: ExchangeRow) -> ExchangeRow:
    """The row with every text field storable; the same object when nothing needs to change."""
    changes = {}
    for name in ExchangeRow.__struct_fields__:
        value = getattr(row, name)
        if isinstance(value, str) and (storable := pg_text(value)) != value:
            changes[name] = storable
    return msgspec.structs.replace(row, **changes) if changes else row
