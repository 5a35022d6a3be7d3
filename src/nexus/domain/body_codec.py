"""Store a Messages request body as content-addressed parts plus a small skeleton, and rebuild it byte for byte.

Claude Code resends the whole conversation on every turn, with the same large system prompt and
tools array each time, so storing bodies whole grows quadratically with the turns. Here each
element of the top-level ``messages`` array, and the ``system`` and ``tools`` values when large,
becomes a part named by the SHA-256 of its exact bytes; the skeleton keeps everything else
verbatim and refers to the parts by digest. A part shared by many requests is stored once.

The body is never re-serialised: pieces are cut out of the original bytes, so composing returns
exactly what the client sent (whitespace, key order, escapes, unicode as sent).

Skeleton format, version 1 (binary, so no byte sequence of the body can pass for a reference)::

    skeleton := 0x01 segment*
    segment  := 0x00 length data      literal: `length` bytes of the body, copied as is
              | 0x01 digest           reference: the 32-byte SHA-256 of a part
    length   := unsigned LEB128 varint

The body's bytes only ever appear inside a length-framed literal, which the reader skips over
without looking at, so they can never be mistaken for a reference whatever they contain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import msgspec

FORMAT_VERSION = 1
# A system prompt or tools array up to this size costs less inline than a part row and a reference.
DEFAULT_INLINE_LIMIT = 1024

_LITERAL = 0x00
_REFERENCE = 0x01
_DIGEST_SIZE = hashlib.sha256().digest_size
# Ten 7-bit groups cover any 64-bit length; more can only come from a corrupt skeleton.
_MAX_VARINT_SHIFT = 63
# Top-level values kept as parts only when they exceed the inline limit.
_LARGE_FIELDS = frozenset({"system", "tools"})
# What JSON allows between two array elements: insignificant whitespace and the one comma.
_ELEMENT_SEPARATORS = frozenset(b" \t\r\n,")


class BodyCodecError(Exception):
    """A stored body cannot be rebuilt from its skeleton and parts."""


class MissingPart(BodyCodecError):
    """The skeleton references a part that the caller did not supply."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"body part {digest} is referenced by the skeleton but was not supplied")
        self.digest = digest


class CorruptSkeleton(BodyCodecError):
    """The skeleton does not follow the format it claims."""


class Part(NamedTuple):
    """One content-addressed piece of a body: ``digest`` is the SHA-256 hex of ``data``.

    A named tuple, so callers may unpack ``for digest, data in decomposed.parts``.
    """

    digest: str
    data: bytes


class Decomposed(msgspec.Struct, frozen=True):
    """A body split for storage: the per-request skeleton and the distinct parts it references."""

    skeleton: bytes
    parts: tuple[Part, ...]


def decompose(body: bytes, *, inline_limit: int = DEFAULT_INLINE_LIMIT) -> Decomposed:
    """Split a request body into a skeleton and content-addressed parts.

    Each element of the top-level ``messages`` array becomes a part, and so do the top-level
    ``system`` and ``tools`` values when larger than ``inline_limit`` bytes. A body that is not a
    JSON object with a ``messages`` array is kept whole in the skeleton, with no parts.

    Args:
        body: The request body exactly as the client sent it.
        inline_limit: ``system`` and ``tools`` values of at most this many bytes stay in the skeleton.

    Returns:
        The skeleton and the distinct parts, in order of first reference. Never raises on odd input.
    """
    return _encode(body, _piece_spans(body, inline_limit))


def compose(skeleton: bytes, parts: Mapping[str, bytes]) -> bytes:
    """Rebuild the exact body from its skeleton and parts.

    Args:
        skeleton: A skeleton made by ``decompose``.
        parts: Part bytes by SHA-256 hex digest; entries the skeleton does not reference are ignored.

    Returns:
        The original body, byte for byte.

    Raises:
        MissingPart: A referenced digest is absent from ``parts``.
        CorruptSkeleton: The skeleton is malformed or of an unknown format version.
    """
    chunks: list[bytes | memoryview] = []
    for segment in _segments(skeleton):
        if isinstance(segment, memoryview):
            chunks.append(segment)
            continue
        try:
            chunks.append(parts[segment])
        except KeyError:
            raise MissingPart(segment) from None
    return b"".join(chunks)


def part_digests(skeleton: bytes) -> list[str]:
    """List the digests a skeleton references, each once, in order of first reference.

    The order matches ``Decomposed.parts`` for the same body.

    Args:
        skeleton: A skeleton made by ``decompose``.

    Returns:
        SHA-256 hex digests of the parts needed to compose the body.

    Raises:
        CorruptSkeleton: The skeleton is malformed or of an unknown format version.
    """
    # dict keeps insertion order, so it deduplicates without losing the first-reference order.
    return list(dict.fromkeys(segment for segment in _segments(skeleton) if isinstance(segment, str)))


# --- finding the pieces -------------------------------------------------------------------------


def _piece_spans(body: bytes, inline_limit: int) -> list[tuple[int, int]]:
    """Byte ranges of the body to store as parts, in increasing order and never overlapping.

    Values are located by searching the body for their exact bytes, forward from the end of the
    previous top-level value. The search may land on an earlier identical occurrence (a key
    spelled like a string value, a duplicated key): that is harmless, because the skeleton
    replaces the range with a reference to bytes identical to those in the range, so composing
    gives back the same body whichever occurrence was cut out.
    """
    fields = _top_level_fields(body)
    if fields is None or "messages" not in fields:
        return []
    elements = _array_elements(fields["messages"])
    if elements is None:
        return []
    spans: list[tuple[int, int]] = []
    cursor = 0
    for key, raw in fields.items():
        start = body.find(raw, cursor)
        if start < 0:
            # With a duplicated key the decoder reports the last value at the first key's place,
            # so that value may lie behind the cursor already; it then simply stays inline.
            continue
        end = start + len(raw)
        if key == "messages":
            spans.extend(_element_spans(body, start, end, elements))
        elif key in _LARGE_FIELDS and len(raw) > inline_limit:
            spans.append((start, end))
        cursor = end
    return spans


def _top_level_fields(body: bytes) -> dict[str, msgspec.Raw] | None:
    """Every top-level value's exact bytes in document order, or None if the body is no JSON object."""
    try:
        return msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        # RecursionError: msgspec's answer to absurdly deep nesting; UnicodeDecodeError, to bytes
        # that are no UTF-8: odd input like any other. (A lone surrogate escape too: kept whole.)
        return None


def _array_elements(raw: msgspec.Raw) -> list[msgspec.Raw] | None:
    """The exact bytes of each element of a JSON array, or None if ``raw`` is not an array."""
    try:
        return msgspec.json.decode(raw, type=list[msgspec.Raw])
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None


def _element_spans(body: bytes, start: int, end: int, elements: list[msgspec.Raw]) -> list[tuple[int, int]]:
    """Ranges of the array elements inside ``body[start:end]``; separators between them stay literal."""
    spans: list[tuple[int, int]] = []
    position = start + 1  # past the opening bracket
    for element in elements:
        found = _next_element(body, position, end, element)
        if found < 0:  # cannot happen for bytes msgspec parsed; kept inline rather than trusted
            break
        position = found + len(element)
        spans.append((found, position))
    return spans


def _next_element(body: bytes, position: int, end: int, element: bytes) -> int:
    """Offset of ``element`` at or after ``position``, or -1.

    Only whitespace and a comma separate an element from the previous one, and an element never
    starts with either, so skipping them lands on the element: one comparison instead of a search,
    which matters for arrays of hundreds of large messages. The search is the fallback that keeps
    this correct even if that reasoning were ever wrong.
    """
    probe = position
    while probe < end and body[probe] in _ELEMENT_SEPARATORS:
        probe += 1
    if body.startswith(element, probe):
        return probe
    return body.find(element, position, end)


# --- skeleton encoding --------------------------------------------------------------------------


def _encode(body: bytes, spans: list[tuple[int, int]]) -> Decomposed:
    skeleton = bytearray((FORMAT_VERSION,))
    parts: dict[str, Part] = {}
    view = memoryview(body)
    cursor = 0
    for start, end in spans:
        _write_literal(skeleton, view[cursor:start])
        data = body[start:end]
        digest = hashlib.sha256(data).digest()
        skeleton.append(_REFERENCE)
        skeleton += digest
        name = digest.hex()
        if name not in parts:
            parts[name] = Part(digest=name, data=data)
        cursor = end
    _write_literal(skeleton, view[cursor:])
    return Decomposed(skeleton=bytes(skeleton), parts=tuple(parts.values()))


def _write_literal(skeleton: bytearray, chunk: memoryview) -> None:
    if not chunk:
        return
    skeleton.append(_LITERAL)
    _write_varint(skeleton, len(chunk))
    skeleton += chunk


def _write_varint(skeleton: bytearray, value: int) -> None:
    while value >= 0x80:
        skeleton.append((value & 0x7F) | 0x80)
        value >>= 7
    skeleton.append(value)


# --- skeleton decoding --------------------------------------------------------------------------


def _segments(skeleton: bytes) -> Iterator[memoryview | str]:
    """Walk a skeleton: literal bytes as memoryviews (no copy), references as hex digests."""
    if not skeleton:
        raise CorruptSkeleton("empty skeleton: expected a format version byte")
    if skeleton[0] != FORMAT_VERSION:
        raise CorruptSkeleton(f"unsupported skeleton format version {skeleton[0]}")
    view = memoryview(skeleton)
    size = len(skeleton)
    position = 1
    while position < size:
        tag = skeleton[position]
        position += 1
        if tag == _LITERAL:
            length, position = _read_varint(skeleton, position)
            if position + length > size:
                raise CorruptSkeleton(f"literal of {length} bytes at offset {position} overruns the skeleton")
            yield view[position : position + length]
            position += length
        elif tag == _REFERENCE:
            if position + _DIGEST_SIZE > size:
                raise CorruptSkeleton(f"truncated part digest at offset {position}")
            yield skeleton[position : position + _DIGEST_SIZE].hex()
            position += _DIGEST_SIZE
        else:
            raise CorruptSkeleton(f"unknown segment tag {tag:#04x} at offset {position - 1}")


def _read_varint(skeleton: bytes, position: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 integer; returns it and the offset just past it."""
    value = 0
    shift = 0
    while True:
        if position >= len(skeleton):
            raise CorruptSkeleton(f"truncated literal length at offset {position}")
        byte = skeleton[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise CorruptSkeleton(f"literal length too long at offset {position}")
