import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from nexus.domain.body_codec import (
    DEFAULT_INLINE_LIMIT,
    FORMAT_VERSION,
    CorruptSkeleton,
    Decomposed,
    MissingPart,
    compose,
    decompose,
    part_digests,
)

FIXTURE = Path(__file__).parents[2] / "fixtures" / "conversation-linking" / "06-compact-weird.json"


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def round_trip(body: bytes, **options: Any) -> Decomposed:
    """Decompose, check every invariant of the result, and compose back to the exact bytes."""
    result = decompose(body, **options)
    assert result.skeleton[0] == FORMAT_VERSION
    assert all(part.digest == sha(part.data) for part in result.parts)
    assert part_digests(result.skeleton) == [part.digest for part in result.parts]
    assert compose(result.skeleton, {part.digest: part.data for part in result.parts}) == body
    return result


def message_bytes(body: bytes) -> list[bytes]:
    fields = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    return [bytes(raw) for raw in msgspec.json.decode(fields["messages"], type=list[msgspec.Raw])]


def big_text(size: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = ["claude", "tool", "résumé", "日本語", "emoji 😀", 'quote "x"', "back\\slash", "line\nbreak", "tab\t"]
    text: list[str] = []
    while sum(len(word) for word in text) < size:
        text.append(rng.choice(words))
    return " ".join(text)


SYSTEM_TEXT = big_text(3000)
TOOLS = [
    {"name": f"tool_{n}", "description": big_text(800, n), "input_schema": {"type": "object", "properties": {}}}
    for n in range(40)
]
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [[1, [2, [3]]], {"a": []}]}]},
]


# --- byte-exact round trips ---------------------------------------------------------------------------

ODD_WHITESPACE = (
    b' \r\n\t{ \n"model"\t:\r\n "claude"  ,\n\n  "messages" :[\n\n\t{"role" :"user",\n"content":"a"}\t,'
    b'\r\n  {"role":"assistant","content"  :  [ {"type":"text","text":"b"} ] }  ,{"role":"user","content":"c"}'
    b'\n\n  ]\t,\n"stream" : true \r\n} \n\t'
)

BODIES: dict[str, bytes] = {
    "compact": compact({"model": "m", "system": SYSTEM_TEXT, "messages": MESSAGES, "max_tokens": 10}),
    "pretty": json.dumps({"model": "m", "system": SYSTEM_TEXT, "messages": MESSAGES}, indent=4).encode(),
    "odd whitespace": ODD_WHITESPACE,
    "unicode escaped": json.dumps({"messages": [{"role": "user", "content": "é 日本 😀 \u2028"}]}).encode(),
    "unicode raw": compact({"messages": [{"role": "user", "content": "é 日本 😀 \u2028"}]}),
    "escapes mixed": b'{"messages":[{"role":"user","content":"\\u00e9 \xc3\xa9 \\/ / \\"q\\" \\ud83d\\ude00"}]}',
    "messages first": compact({"messages": MESSAGES, "model": "m", "system": SYSTEM_TEXT, "tools": TOOLS}),
    "messages last": compact({"tools": TOOLS, "system": SYSTEM_TEXT, "model": "m", "messages": MESSAGES}),
    "empty messages": b'{"model":"m","messages":[]}',
    "empty messages spaced": b'{"model":"m","messages":[ \n ] }',
    "string content": compact({"messages": [{"role": "user", "content": "just text"}]}),
    "array content": compact({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
    "system string": compact({"system": SYSTEM_TEXT, "messages": MESSAGES}),
    "system array": compact({"system": [{"type": "text", "text": SYSTEM_TEXT}], "messages": MESSAGES}),
    "huge tools": compact({"tools": TOOLS * 10, "messages": MESSAGES}),
    "nested arrays": compact({"messages": [[[[]]], [1, [2, [3, [4]]]], {"a": [[{"b": [[]]}]]}]}),
    "duplicate messages": compact({"messages": [MESSAGES[0], MESSAGES[1], MESSAGES[0], MESSAGES[0]]}),
    "non-JSON": b'this is not json {"messages":[]}',
    "truncated JSON": compact({"messages": MESSAGES})[:-7],
    "invalid UTF-8": b'{"messages":[{"content":"\xff\xfe"}]}',
    "JSON array": compact([{"messages": MESSAGES}]),
    "JSON string": b'"messages"',
    "no messages": compact({"model": "m", "system": SYSTEM_TEXT, "tools": TOOLS}),
    "messages not an array": compact({"messages": {"role": "user"}, "system": SYSTEM_TEXT}),
    "messages null": b'{"messages":null}',
    "empty body": b"",
    "whitespace only": b" \n ",
    "byte order mark": b"\xef\xbb\xbf" + compact({"messages": MESSAGES}),
    "trailing garbage": compact({"messages": MESSAGES}) + b"}",
    "duplicate keys": b'{"messages":[{"a":1}],"x":1,"messages":[{"b":2}],"system":"s"}',
    "escaped key": b'{"m\\u0065ssages":[{"a":1},{"b":2}]}',
    "array bytes repeated earlier": b'{"copy":[{"a":1}],"messages":[{"a":1}]}',
    "value spelled like its key": b'{"system":"system","messages":["messages"]}',
    "deeply nested": b'{"messages":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_round_trip_is_byte_exact(body: bytes) -> None:
    round_trip(body)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_round_trip_is_byte_exact_when_everything_is_a_part(body: bytes) -> None:
    round_trip(body, inline_limit=0)


@pytest.mark.parametrize(
    "name", ["compact", "pretty", "odd whitespace", "escapes mixed", "nested arrays", "messages first"]
)
def test_each_message_is_a_part_holding_its_exact_bytes(name: str) -> None:
    body = BODIES[name]
    result = round_trip(body)
    data = {part.data for part in result.parts}
    assert all(message in data for message in message_bytes(body))


def test_separators_between_messages_stay_in_the_skeleton_verbatim() -> None:
    result = round_trip(ODD_WHITESPACE)
    assert b"}\t,\r\n  {" not in b"".join(part.data for part in result.parts)
    assert b"\t,\r\n  " in result.skeleton
    assert b"  ,{" not in result.skeleton  # the element after it is a part, not literal
    assert len(result.parts) == 3


@pytest.mark.parametrize(
    "name", ["non-JSON", "JSON array", "no messages", "messages not an array", "messages null", "byte order mark"]
)
def test_bodies_without_a_messages_array_stay_whole(name: str) -> None:
    result = round_trip(BODIES[name])
    assert result.parts == ()
    assert BODIES[name] in result.skeleton


def test_an_empty_body_is_just_the_version_byte() -> None:
    assert decompose(b"").skeleton == bytes([FORMAT_VERSION])


def test_large_system_and_tools_are_parts_small_ones_inline() -> None:
    small = compact({"system": "be brief", "tools": [], "messages": MESSAGES[:1]})
    assert [part.data for part in round_trip(small).parts] == [compact(MESSAGES[0])]

    large = compact({"system": SYSTEM_TEXT, "tools": TOOLS, "messages": MESSAGES[:1]})
    data = [part.data for part in round_trip(large).parts]
    assert data == [compact(SYSTEM_TEXT), compact(TOOLS), compact(MESSAGES[0])]
    assert len(compact(SYSTEM_TEXT)) > DEFAULT_INLINE_LIMIT


def test_inline_limit_is_a_parameter() -> None:
    body = compact({"system": "be brief", "messages": []})
    assert round_trip(body).parts == ()
    assert [part.data for part in round_trip(body, inline_limit=5).parts] == [b'"be brief"']
    assert round_trip(body, inline_limit=10).parts == ()


def test_duplicate_messages_in_one_body_make_one_part_referenced_twice() -> None:
    body = BODIES["duplicate messages"]
    result = round_trip(body)
    assert [part.data for part in result.parts] == [compact(MESSAGES[0]), compact(MESSAGES[1])]
    assert result.skeleton.count(bytes.fromhex(result.parts[0].digest)) == 3


def test_the_same_message_gives_the_same_part_in_every_body() -> None:
    first = round_trip(compact({"model": "a", "messages": MESSAGES[:2]}))
    second = round_trip(compact({"messages": MESSAGES, "model": "b", "stream": True}))
    assert {part.digest for part in first.parts} < {part.digest for part in second.parts}


# --- the reference marker is never ambiguous -----------------------------------------------------------


def test_a_body_holding_reference_marker_bytes_is_kept_literally() -> None:
    message = compact(MESSAGES[0])
    marker = b"\x01" + hashlib.sha256(message).digest()
    body = b"\x01\x00" + marker + b"\x00\x05" + marker + b'{"messages":[' + message + b"]}" + marker
    result = round_trip(body)
    # Handing compose the very part the marker names must not make it substitute anything.
    assert compose(result.skeleton, {sha(message): b"SUBSTITUTED"}) == body


def test_a_body_that_is_itself_a_skeleton_round_trips() -> None:
    inner = decompose(BODIES["compact"])
    parts = {part.digest: part.data for part in inner.parts}
    outer = round_trip(inner.skeleton)
    assert outer.parts == ()
    assert compose(outer.skeleton, parts) == inner.skeleton


def test_json_text_that_spells_a_reference_round_trips() -> None:
    message = compact(MESSAGES[0])
    digest = sha(message)
    spelled = {"role": "user", "content": f"\u0001{digest} \\x01{digest} \x00 {digest}"}
    body = json.dumps({"system": f"\u0001{digest}", "messages": [MESSAGES[0], spelled], "ref": digest}).encode()
    assert b"\\u0001" in body
    round_trip(body)
    round_trip(body, inline_limit=0)


# --- errors -------------------------------------------------------------------------------------------


def test_missing_part_names_its_digest() -> None:
    result = decompose(BODIES["compact"])
    parts = {part.digest: part.data for part in result.parts}
    absent = result.parts[1].digest
    del parts[absent]
    with pytest.raises(MissingPart, match=absent) as caught:
        compose(result.skeleton, parts)
    assert caught.value.digest == absent


def test_extra_parts_are_ignored() -> None:
    result = decompose(BODIES["compact"])
    parts = {part.digest: part.data for part in result.parts} | {sha(b"other"): b"other"}
    assert compose(result.skeleton, parts) == BODIES["compact"]


DIGEST = bytes(32)
CORRUPT = {
    "empty": b"",
    "unknown version": b"\x02\x00\x01x",
    "version zero": b"\x00",
    "unknown tag": b"\x01\x02abc",
    "truncated digest": b"\x01\x01" + DIGEST[:31],
    "truncated length": b"\x01\x00\x80",
    "literal overruns": b"\x01\x00\x05abcd",
    "overlong length": b"\x01\x00" + b"\xff" * 10 + b"\x01",
    "garbage after a valid segment": b"\x01\x00\x01x\x07",
}


@pytest.mark.parametrize("skeleton", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_skeletons_are_rejected(skeleton: bytes) -> None:
    with pytest.raises(CorruptSkeleton):
        compose(skeleton, {DIGEST.hex(): b"x"})
    with pytest.raises(CorruptSkeleton):
        part_digests(skeleton)


def test_a_hand_made_skeleton_composes() -> None:
    skeleton = b"\x01\x00\x02ab\x01" + DIGEST + b"\x00\x81\x01" + b"z" * 129 + b"\x01" + DIGEST
    assert compose(skeleton, {DIGEST.hex(): b"-"}) == b"ab-" + b"z" * 129 + b"-"
    assert part_digests(skeleton) == [DIGEST.hex()]


def test_part_digests_follow_the_body_order() -> None:
    body = compact({"tools": TOOLS, "messages": [MESSAGES[2], MESSAGES[0], MESSAGES[2]], "system": SYSTEM_TEXT})
    expected = [sha(compact(TOOLS)), sha(compact(MESSAGES[2])), sha(compact(MESSAGES[0])), sha(compact(SYSTEM_TEXT))]
    assert part_digests(round_trip(body).skeleton) == expected


# --- deduplication over a growing conversation ---------------------------------------------------------


def storage_for(bodies: list[bytes]) -> tuple[int, int]:
    """Bytes of every skeleton plus every distinct part, and of the bodies stored whole."""
    parts: dict[str, int] = {}
    skeletons = 0
    for body in bodies:
        result = round_trip(body)
        skeletons += len(result.skeleton)
        parts.update((part.digest, len(part.data)) for part in result.parts)
    return skeletons + sum(parts.values()), sum(len(body) for body in bodies)


def synthetic_turn(messages: list[dict[str, Any]], turns: int) -> bytes:
    return compact({"model": "claude", "system": SYSTEM_TEXT, "tools": TOOLS, "messages": messages[: 2 * turns]})


def test_a_growing_conversation_is_stored_in_proportion_to_its_length() -> None:
    rng = random.Random(200)
    messages = [
        {"role": ("user", "assistant")[n % 2], "content": big_text(rng.randrange(200, 4000), n)} for n in range(400)
    ]
    bodies = [synthetic_turn(messages, turn) for turn in range(1, 201)]
    stored, whole = storage_for(bodies)
    final = len(bodies[-1])
    print(
        f"\nsynthetic 200 turns: final body {final} B, stored {stored} B = {stored / final:.2f}x final, "
        f"{stored / whole:.2%} of {whole} B stored whole"
    )
    assert stored < 3 * final
    assert stored < whole / 30


def real_conversation() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())["parent"]["body"]
    return body


def test_the_real_claude_code_conversation_dedups() -> None:
    body = real_conversation()
    messages = body["messages"]
    bodies = [compact(body | {"messages": messages[:count]}) for count in range(len(messages) - 199, len(messages) + 1)]
    assert len(bodies) == 200
    assert bodies[-1] == compact(body)
    stored, whole = storage_for(bodies)
    final = len(bodies[-1])
    print(
        f"\nreal 200-request prefix series: final body {final} B, stored {stored} B = {stored / final:.2f}x final, "
        f"{stored / whole:.2%} of {whole} B stored whole"
    )
    assert stored < 4 * final
    assert stored < whole / 30


def test_real_conversation_bodies_round_trip_in_every_spelling() -> None:
    recorded = json.loads(FIXTURE.read_text())
    for body in (recorded["parent"]["body"], recorded["child"]["body"]):
        round_trip(compact(body))
        round_trip(json.dumps(body).encode())
        round_trip(json.dumps(body, indent=3, ensure_ascii=False).encode())


def test_decompose_time_on_real_bodies_is_printed_not_asserted() -> None:
    recorded = json.loads(FIXTURE.read_text())
    parent = recorded["parent"]["body"]
    merged = parent | {"messages": parent["messages"] + recorded["child"]["body"]["messages"]}
    for label, body in (
        ("real parent body", compact(parent)),
        ("parent+child messages", compact(merged)),
        ("parent+child messages, ASCII-escaped, indent=4", json.dumps(merged, indent=4).encode()),
    ):
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            decompose(body)
            timings.append(time.perf_counter() - started)
        print(f"\ndecompose {label}: {len(body)} B in {min(timings) * 1000:.2f} ms (best of 5)")


# --- seeded random fuzz --------------------------------------------------------------------------------

WHITESPACE = [b"", b"", b"", b" ", b"\n", b"\t", b"\r\n", b" \n\t  "]
ALPHABET = 'ab z/\\"\n\t\x00\x01\x1fé日😀\u2028{}[],:' + "\u0001"


def fuzz_whitespace(rng: random.Random) -> bytes:
    return rng.choice(WHITESPACE)


def fuzz_string(rng: random.Random, text: str) -> bytes:
    """JSON string with every character spelled one of the ways JSON allows, chosen at random."""
    out = [b'"']
    for char in text:
        code = ord(char)
        if char in '"\\' or code < 0x20 or rng.random() < 0.2:
            if code > 0xFFFF:
                high, low = divmod(code - 0x10000, 0x400)
                out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04X}".encode())
            elif char in '"\\' and rng.random() < 0.5:
                out.append(b"\\" + char.encode())
            else:
                out.append(f"\\u{code:04x}".encode())
        elif char == "/" and rng.random() < 0.5:
            out.append(b"\\/")
        else:
            out.append(char.encode())
    out.append(b'"')
    return b"".join(out)


def fuzz_render(rng: random.Random, value: object) -> bytes:
    """Serialise with random insignificant whitespace and random string escapes."""
    if isinstance(value, dict):
        items = [
            fuzz_whitespace(rng)
            + fuzz_string(rng, key)
            + fuzz_whitespace(rng)
            + b":"
            + fuzz_whitespace(rng)
            + fuzz_render(rng, item)
            + fuzz_whitespace(rng)
            for key, item in value.items()
        ]
        return b"{" + b",".join(items) + fuzz_whitespace(rng) + b"}"
    if isinstance(value, list):
        elements = [fuzz_whitespace(rng) + fuzz_render(rng, item) + fuzz_whitespace(rng) for item in value]
        return b"[" + b",".join(elements) + fuzz_whitespace(rng) + b"]"
    if isinstance(value, str):
        return fuzz_string(rng, value)
    return json.dumps(value).encode()


def fuzz_text(rng: random.Random, longest: int = 40) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(longest)))


def fuzz_value(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(7 if depth < 4 else 4)
    scalars: list[object] = [None, True, False, rng.randrange(-1000, 1000), rng.random() * 1e6, fuzz_text(rng)]
    if kind < 4:
        return rng.choice(scalars)
    if kind < 6:
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {fuzz_text(rng, 8): fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def fuzz_message(rng: random.Random) -> object:
    shape = rng.randrange(4)
    if shape == 0:
        return {"role": "user", "content": fuzz_text(rng, 200)}
    if shape == 1:
        return {"content": [{"type": "text", "text": fuzz_text(rng)} for _ in range(rng.randrange(3))], "role": "x"}
    if shape == 2:
        return fuzz_value(rng, 0)
    return {"role": "assistant", "content": [fuzz_value(rng, 1), [[fuzz_value(rng, 2)]]]}


def fuzz_body(rng: random.Random) -> bytes:
    pool = [fuzz_message(rng) for _ in range(rng.randrange(1, 6))]
    fields: dict[str, object] = {
        "model": fuzz_text(rng, 10),
        "messages": [rng.choice(pool) for _ in range(rng.randrange(8))],
        "system": rng.choice([fuzz_text(rng, 3000), [{"type": "text", "text": fuzz_text(rng, 2000)}], "s"]),
        "tools": [{"name": fuzz_text(rng, 10), "schema": fuzz_value(rng, 0)} for _ in range(rng.randrange(30))],
        "stream": rng.random() < 0.5,
    }
    keys = rng.sample(sorted(fields), rng.randrange(1, len(fields) + 1))
    body = fuzz_whitespace(rng) + fuzz_render(rng, {key: fields[key] for key in keys}) + fuzz_whitespace(rng)
    damage = rng.randrange(10)
    if damage == 0:
        return body[: rng.randrange(len(body) + 1)]
    if damage == 1:
        return b"[" + body + b"]"
    if damage == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))) + body
    return body


def test_seeded_random_bodies_round_trip_exactly() -> None:
    rng = random.Random(20_240_601)
    decomposed = 0
    for _ in range(1500):
        body = fuzz_body(rng)
        result = round_trip(body, inline_limit=rng.choice([0, 64, DEFAULT_INLINE_LIMIT]))
        if result.parts:
            decomposed += 1
            data = {part.data for part in result.parts}
            assert all(message in data for message in message_bytes(body))
    assert decomposed > 500  # the damage and the missing keys must not leave the interesting path untested


def test_parts_unpack_as_digest_and_data() -> None:
    for digest, data in decompose(BODIES["compact"]).parts:
        assert digest == sha(data)
