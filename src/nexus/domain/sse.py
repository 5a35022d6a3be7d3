"""Server-sent events read from raw bytes: the one parser behind usage, the rebuilt message and
the dashboard's timeline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

# An event ends at an empty line; lines end in LF or CRLF (Anthropic sends LF; a proxy or a
# recording on the way may have turned it into CRLF, and a stream must read the same either way).
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class SseEvent(NamedTuple):
    name: bytes  # the ``event:`` field, empty when absent
    data: bytes  # the ``data:`` lines joined with LF
    start: int  # where the event starts in the stream
    end: int  # where it ends, its separator included


def sse_events(stream: bytes) -> Iterator[SseEvent]:
    """The events of ``stream`` in order; a torn last event (no empty line after it) is yielded
    too, and callers decide whether its data parses. Blank stretches are no events."""
    start = 0
    for separator in _EVENT_END.finditer(stream):
        if stream[start : separator.start()].strip():
            yield _event(stream, start, separator.start(), separator.end())
        start = separator.end()
    if stream[start:].strip():
        yield _event(stream, start, len(stream), len(stream))


def _event(stream: bytes, start: int, body_end: int, end: int) -> SseEvent:
    name = b""
    data: list[bytes] = []
    for raw_line in stream[start:body_end].split(b"\n"):
        line = raw_line.rstrip(b"\r")
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
    return SseEvent(name, b"\n".join(data), start, end)
