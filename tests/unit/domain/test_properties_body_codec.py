"""Properties of the body codec: whatever the bytes, composing the decomposition gives them back."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus.domain.body_codec import BodyCodecError, CorruptSkeleton, Decomposed, compose, decompose, part_digests
from tests.support.fuzzing import fuzz_settings
from tests.support.json_strategies import CONVERSATION_MESSAGE, messages_bodies, serialiser, spelled_bodies


def round_trip(body: bytes, inline_limit: int = 1024) -> Decomposed:
    decomposed = decompose(body, inline_limit=inline_limit)
    parts = {part.digest: part.data for part in decomposed.parts}
    assert compose(decomposed.skeleton, parts) == body
    assert all(part.digest == hashlib.sha256(part.data).hexdigest() for part in decomposed.parts)
    assert part_digests(decomposed.skeleton) == [part.digest for part in decomposed.parts]
    return decomposed


def msgspec_messages(body: bytes) -> list[bytes] | None:
    """Each element of the top-level ``messages`` array as msgspec reads it; None if it cannot."""
    try:
        fields = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
        return [bytes(raw) for raw in msgspec.json.decode(fields["messages"], type=list[msgspec.Raw])]
    except (msgspec.MsgspecError, KeyError, RecursionError, UnicodeDecodeError):
        return None


@fuzz_settings(300)
@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2000))
def test_arbitrary_bytes_compose_back_exactly(body: bytes, inline_limit: int) -> None:
    round_trip(body, inline_limit)


@fuzz_settings(100)
@given(spelled_bodies(), st.sampled_from([0, 64, 1024]))
def test_a_messages_body_in_any_spelling_composes_back_exactly(body: bytes, inline_limit: int) -> None:
    decomposed = round_trip(body, inline_limit)
    elements = msgspec_messages(body)
    stored = {part.data for part in decomposed.parts}
    if elements is None:
        # Not a JSON object with a messages array msgspec reads (a lone surrogate escape, a
        # number beyond a float, nesting past its stack): kept whole, nothing to share.
        assert decomposed.parts == ()
    else:
        # Every message is a part of its own, so the next turn can share it.
        assert set(elements) <= stored


@fuzz_settings(50)
@given(st.integers(1, 50_000), st.sampled_from(["[", '{"a":']), st.integers(0, 3))
# Hypothesis raises the recursion limit while a test runs (to about 2,000, from 1,000 in the
# proxy), so only nesting far past both shows what the codec does beyond the decoder's stack.
def test_nesting_deeper_than_the_decoder_goes_composes_back_exactly(depth: int, opener: str, place: int) -> None:
    closer = "]" if opener == "[" else "}"
    deep = opener * depth + "1" + closer * depth
    messages = [f'{{"role":"user","content":{deep}}}' if n == place else '{"role":"user","content":"hi"}'
                for n in range(3)]  # fmt: skip
    round_trip(f'{{"model":"m","messages":[{",".join(messages)}]}}'.encode())


@fuzz_settings(60)
@given(
    st.lists(CONVERSATION_MESSAGE, min_size=1, max_size=6),
    st.integers(min_value=1, max_value=6),
    serialiser(),
    messages_bodies(st.just([])),
)
def test_the_next_turn_shares_every_part_of_the_previous_one(
    conversation: list[dict[str, Any]], cut: int, write: Callable[[Any], bytes], template: dict[str, Any]
) -> None:
    earlier = write({**template, "messages": conversation[:cut]})
    later = write({**template, "messages": conversation})
    earlier_elements = msgspec_messages(earlier)
    if earlier_elements is None or msgspec_messages(later) is None:
        return  # kept whole (see above): there is nothing to share
    earlier_parts = {part.digest for part in decompose(earlier).parts if part.data in earlier_elements}
    later_parts = {part.digest for part in decompose(later).parts}
    assert earlier_parts
    assert earlier_parts <= later_parts


# Skeleton bytes near the format: the version byte first, then tags, varint bytes and data.
SKELETON_BYTES = st.lists(
    st.one_of(st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80", b"\xff"]), st.binary(max_size=40)),
    max_size=12,
).map(b"".join)


@fuzz_settings(300)
@given(st.one_of(st.binary(max_size=300), SKELETON_BYTES.map(b"\x01".__add__)))
def test_a_damaged_skeleton_raises_only_the_codecs_errors(skeleton: bytes) -> None:
    with contextlib.suppress(BodyCodecError):
        part_digests(skeleton)
    with contextlib.suppress(BodyCodecError):
        compose(skeleton, {})


def segment_ends(skeleton: bytes) -> set[int]:
    """Where each segment of a well-formed skeleton ends, read by the format in the module's
    docstring: a cut there leaves a valid skeleton, a cut anywhere else does not."""
    ends = {1}
    position = 1
    while position < len(skeleton):
        tag = skeleton[position]
        position += 1
        if tag == 0x00:
            length = shift = 0
            while True:
                byte = skeleton[position]
                position += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            position += length
        else:
            position += 32
        ends.add(position)
    return ends


@fuzz_settings(60)
@given(spelled_bodies(), st.data())
def test_a_cut_skeleton_composes_only_at_a_segment_boundary(body: bytes, data: st.DataObject) -> None:
    decomposed = decompose(body, inline_limit=0)
    parts = {part.digest: part.data for part in decomposed.parts}
    ends = segment_ends(decomposed.skeleton)
    # Half the time right after a segment's tag (or inside its length), where cuts go wrong.
    cut = data.draw(
        st.one_of(st.integers(1, len(decomposed.skeleton)), st.sampled_from(sorted(ends)).map(lambda e: e + 1))
    )
    cut = min(cut, len(decomposed.skeleton))
    try:
        composed = compose(decomposed.skeleton[:cut], parts)
    except CorruptSkeleton:  # every part is supplied: only the skeleton can be at fault
        assert cut not in ends
    else:
        assert cut in ends
        assert body.startswith(composed)


@fuzz_settings(60)
@given(spelled_bodies(), st.data())
def test_a_flipped_skeleton_byte_raises_only_the_codecs_errors(body: bytes, data: st.DataObject) -> None:
    decomposed = decompose(body, inline_limit=0)
    parts = {part.digest: part.data for part in decomposed.parts}
    skeleton = bytearray(decomposed.skeleton)
    if len(skeleton) < 2:
        return
    tags = segment_ends(decomposed.skeleton) - {len(skeleton)}  # where each segment's tag is
    where = data.draw(st.one_of(st.integers(1, len(skeleton) - 1), st.sampled_from(sorted(tags))))
    skeleton[where] ^= data.draw(st.integers(1, 255))
    try:
        compose(bytes(skeleton), parts)
    except BodyCodecError:
        return
    # A tag that became no tag at all cannot have been read as anything.
    assert not (where in tags and skeleton[where] > 0x01)


@fuzz_settings(40)
@given(spelled_bodies())
def test_a_missing_part_is_named(body: bytes) -> None:
    decomposed = decompose(body, inline_limit=0)
    if not decomposed.parts:
        return
    missing = decomposed.parts[0]
    parts = {part.digest: part.data for part in decomposed.parts[1:]}
    with pytest.raises(BodyCodecError, match=missing.digest):
        compose(decomposed.skeleton, parts)
