"""Bytes stored per request for a growing 200-turn conversation, against the raw bodies.

The conversation is a real Claude Code request (``tests/fixtures/conversation-linking/
06-compact-weird.json``, ``parent.body``, 207 messages): its 200 requests are the prefixes
ending at 8..207 messages, each serialised compactly as Claude Code sends it. Each is
decomposed with ``nexus.domain.body_codec.decompose``, and the store keeps (``row.py``):

- per request, the skeleton (on the ``exchanges`` row);
- per distinct part (a message, or ``system``/``tools`` when large), its bytes
  zlib-compressed at level 6, once (``body_parts``, keyed by the 32-byte SHA-256).

For comparison, the same bodies each zlib-compressed whole. ``python bench/storage.py`` prints
the figures alone.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path
from typing import Any

from nexus.domain.body_codec import decompose

FIXTURE = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "conversation-linking" / "06-compact-weird.json"
)
FIRST_PREFIX = 8  # the first request carries 8 messages, the 200th all 207
REQUESTS = 200
DIGEST_BYTES = 32


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def conversation(fixture: Path = FIXTURE) -> list[bytes]:
    """The 200 request bodies of the growing conversation, oldest first."""
    body = json.loads(fixture.read_text())["parent"]["body"]
    messages = body["messages"]
    last = FIRST_PREFIX + REQUESTS - 1
    if len(messages) < last:
        raise ValueError(f"{fixture.name} has {len(messages)} messages; {last} are needed")
    return [_dumps({**body, "messages": messages[:count]}) for count in range(FIRST_PREFIX, last + 1)]


def account(bodies: list[bytes]) -> dict[str, Any]:
    """What the store keeps for ``bodies``, in bytes, against their raw sum."""
    raw = sum(len(body) for body in bodies)
    skeletons = 0
    parts: dict[str, int] = {}  # digest -> compressed size
    part_bytes = 0
    for body in bodies:
        decomposed = decompose(body)
        skeletons += len(decomposed.skeleton)
        for part in decomposed.parts:
            if part.digest not in parts:
                parts[part.digest] = len(zlib.compress(part.data, 6))
                part_bytes += len(part.data)
    compressed_parts = sum(parts.values())
    stored = skeletons + compressed_parts
    whole = sum(len(zlib.compress(body, 6)) for body in bodies)
    count = len(bodies)
    return {
        "fixture": FIXTURE.name,
        "requests": count,
        "messages_first_last": [FIRST_PREFIX, FIRST_PREFIX + count - 1],
        "raw_bytes": raw,
        "raw_bytes_per_request": round(raw / count),
        "last_request_bytes": len(bodies[-1]),
        "skeleton_bytes": skeletons,
        "distinct_parts": len(parts),
        "distinct_part_bytes": part_bytes,
        "compressed_part_bytes": compressed_parts,
        "part_digest_bytes": len(parts) * DIGEST_BYTES,
        "stored_bytes": stored,
        "stored_bytes_per_request": round(stored / count),
        "stored_ratio": round(stored / raw, 4),
        "zlib_whole_bytes_per_request": round(whole / count),
        "zlib_whole_ratio": round(whole / raw, 4),
    }


def main() -> int:
    result = account(conversation())
    for key, value in result.items():
        print(f"{key:<30}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
