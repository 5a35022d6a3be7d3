"""Hypothesis strategies for what clients send: JSON values, Messages request bodies, and the
many byte spellings of one JSON document (whitespace, escapes, key order, lone surrogates,
numbers beyond a float, nesting deeper than a parser's stack)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

# Every code point, lone surrogates included: Claude Code cuts strings inside an emoji, and
# JSON may carry the half it kept as a ``\ud83d`` escape.
CHARACTERS = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
TEXT = st.text(CHARACTERS, max_size=30)
# Words that mean something to the rules under test, so random text meets them often.
KEYWORDS = st.sampled_from(
    ["<system-reminder>", "</system-reminder>", "quota", "\r\n", "\n\n", " ", "\ufeff", "\u00a0",
     "x-anthropic-billing-header:", "messages", '"messages":', "tool_use", "tool_result", "\\", '"', "data:",
     "event:", "\ud83d", "\ude00"]
)  # fmt: skip
RICH_TEXT = st.lists(st.one_of(TEXT, KEYWORDS), max_size=4).map("".join)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    RICH_TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(RICH_TEXT, children, max_size=4)),
    max_leaves=10,
)

ID = st.one_of(st.sampled_from(["toolu_1", "toolu_2", "toolu_3"]), st.text(max_size=8))
TEXT_BLOCK = st.fixed_dictionaries({"type": st.just("text"), "text": RICH_TEXT})
TOOL_USE = st.fixed_dictionaries(
    {"type": st.just("tool_use"), "id": ID, "name": st.sampled_from(["Bash", "Read", "Agent", "Task"]), "input": JSON}
)
TOOL_RESULT = st.fixed_dictionaries(
    {
        "type": st.just("tool_result"),
        "tool_use_id": ID,
        "content": st.one_of(RICH_TEXT, st.lists(TEXT_BLOCK, max_size=3)),
    }
)
THINKING = st.one_of(
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": RICH_TEXT, "signature": st.text(max_size=8)}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": st.text(max_size=8)}),
)
IMAGE = st.fixed_dictionaries(
    {
        "type": st.just("image"),
        "source": st.fixed_dictionaries(
            {"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.text(max_size=20)}
        ),
    }
)
# A known block type whose fields hold anything: a number for a text, a list for an id.
MISTYPED_BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "tool_use", "tool_result", "image", "thinking"])},
    optional={name: JSON for name in ("text", "id", "name", "input", "tool_use_id", "content", "source")},
)
BLOCK = st.one_of(TEXT_BLOCK, TOOL_USE, TOOL_RESULT, THINKING, IMAGE, MISTYPED_BLOCK, JSON)
CONTENT = st.one_of(RICH_TEXT, st.lists(BLOCK, max_size=4), JSON)
ROLE = st.sampled_from(["user", "assistant", "user", "assistant", "system", "tool", ""])
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": ROLE, "content": CONTENT}),
    st.fixed_dictionaries({"role": ROLE, "content": CONTENT}, optional={"extra": JSON}),
    JSON,  # not a message at all: clients send garbage too
)
MESSAGES = st.lists(MESSAGE, max_size=6)
# A conversation as the hashing sees it after its filter: user and assistant messages only.
CONVERSATION_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "content": st.one_of(RICH_TEXT, st.lists(BLOCK, max_size=4))}
)
SYSTEM = st.one_of(RICH_TEXT, st.lists(TEXT_BLOCK, max_size=4), JSON)


@st.composite
def messages_bodies(draw: st.DrawFn, messages: st.SearchStrategy[list[Any]] = MESSAGES) -> dict[str, Any]:
    """A Messages request body, as a dict; fields in any order, some optional, some unknown."""
    model = draw(st.one_of(st.sampled_from(["claude-sonnet-5", "claude-haiku-4-5", ""]), RICH_TEXT))
    fields: dict[str, Any] = {"model": model, "messages": draw(messages)}
    optional = {
        "max_tokens": st.integers(min_value=0, max_value=2**40),
        "stream": st.one_of(st.booleans(), JSON),
        # Large enough, sometimes, to go beyond the codec's inline limit and become a part.
        "system": st.one_of(SYSTEM, st.text(min_size=1, max_size=12).map(lambda text: text * (1100 // len(text) + 1))),
        "tools": st.lists(st.fixed_dictionaries({"name": st.text(max_size=10), "input_schema": JSON}), max_size=30),
        "metadata": JSON,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    if draw(st.booleans()):
        fields.update(draw(st.dictionaries(RICH_TEXT, JSON, max_size=2)))
    order = draw(st.permutations(list(fields)))
    return {name: fields[name] for name in order}


# Placeholders swapped, after serialising, for literals no encoder writes: numbers beyond a
# double or 64 bits, and arrays nested deeper than any decoder's stack.
_HUGE = "\u0000huge\u0000"
_DEEP = "\u0000deep\u0000"
_RAW_LITERALS = {
    _HUGE: ["1e400", "-1e400", "1" + "0" * 400, "123456789012345678901234567890", "1E+999999999"],
    _DEEP: ["[" * depth + "]" * depth for depth in (100, 1100, 30_000)],
}


def _escape_surrogates(text: str) -> str:
    return re.sub("[\ud800-\udfff]", lambda match: f"\\u{ord(match.group()):04x}", text)


@st.composite
def json_spellings(draw: st.DrawFn, value: Any) -> bytes:
    """One byte spelling of ``value`` among those clients use; may carry raw literals too."""
    if draw(st.integers(0, 4)) == 0:  # now and then, a huge number or a deep array somewhere
        value = _plant(draw, value, draw(st.sampled_from([_HUGE, _DEEP])))
    ascii_only = draw(st.booleans())
    text = json.dumps(
        value,
        ensure_ascii=ascii_only,
        indent=draw(st.sampled_from([None, None, 0, 2, "\t"])),
        separators=draw(st.sampled_from([None, (",", ":"), (", ", ": "), (" ,", " : ")])),
        sort_keys=draw(st.booleans()),
    )
    for placeholder, literals in _RAW_LITERALS.items():
        quoted = json.dumps(placeholder, ensure_ascii=ascii_only)
        while quoted in text:
            text = text.replace(quoted, draw(st.sampled_from(literals)), 1)
    # Outside ASCII, a lone surrogate cannot be UTF-8: written as the escape JSON allows.
    padding = draw(st.sampled_from(["", " ", "\n", "\r\n\t "]))
    return (padding + _escape_surrogates(text) + padding).encode()


def _plant(draw: st.DrawFn, value: Any, placeholder: str) -> Any:
    """``value`` with ``placeholder`` put in place of one of its parts (or around it)."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(list(value)))
        return {**value, key: _plant(draw, value[key], placeholder)}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], _plant(draw, value[index], placeholder), *value[index + 1 :]]
    if isinstance(value, dict):
        return {**value, draw(RICH_TEXT): placeholder}
    if isinstance(value, list):
        return [*value, placeholder]
    return placeholder


def spelled_bodies(messages: st.SearchStrategy[list[Any]] = MESSAGES) -> st.SearchStrategy[bytes]:
    """Messages request bodies as bytes, spelled in every way :func:`json_spellings` knows."""
    return messages_bodies(messages).flatmap(json_spellings)


def serialiser() -> st.SearchStrategy[Callable[[Any], bytes]]:
    """One consistent way of writing JSON (for comparing two bodies written alike)."""
    return st.builds(
        lambda indent, separators, ascii_only: (
            lambda value: _escape_surrogates(
                json.dumps(value, indent=indent, separators=separators, ensure_ascii=ascii_only)
            ).encode()
        ),
        st.sampled_from([None, 2, "\t"]),
        st.sampled_from([None, (",", ":"), (", ", ": ")]),
        st.booleans(),
    )


def dumps(value: Any, *, ascii_only: bool = True) -> bytes:
    """``value`` as compact JSON bytes, a lone surrogate as its escape (as Anthropic writes it)."""
    return _escape_surrogates(json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))).encode()
