"""The pipe between the proxy and its recorder process (ADR 20).

Frames (``pipe_frames``) whose first byte says what they hold.

Proxy -> recorder, on the child's stdin:
- the first frame: ``RecorderConfig`` as JSON (the database URL is in it: never on the
  command line, where ``ps`` shows it);
- ``X``: an exchange to store: its sequence number, the fields that may change between the
  write-ahead and the end of the exchange (``Final``), and the write-ahead record itself, so
  an exchange is encoded once for the log and the pipe;
- ``J``: the proxy closed a journal segment of its own (its pipe was full): replay it;
- EOF: store (or journal) what is queued, say so, and exit.

Recorder -> proxy, on the child's stdout:
- ``A``: sequence numbers of exchanges now stored, quarantined or journaled, which the proxy
  may settle in its write-ahead log;
- ``C``: the recorder's counts (``Counts``), after each acknowledgement;
- ``L``: a log record (``LogLine``), which the proxy logs as its own, so the child's warnings
  and errors reach the proxy's log format, its handlers and the Slack log bridge.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from nexus.adapters.persistence.journal import decode_record_body
from nexus.adapters.persistence.segment_files import LENGTH
from nexus.adapters.pipe_frames import HEADER
from nexus.application.exchange import Exchange
from nexus.domain.conversation.threading import ThreadRule
from nexus.domain.outcome import Outcome

EXCHANGE = b"X"
REPLAY = b"J"
SETTLED = b"A"
COUNTS = b"C"
LOG = b"L"
_EXCHANGE_HEAD = struct.Struct("!QI")  # sequence number, length of the Final part
_SEQUENCE = struct.Struct("!Q")
MAX_FRAME = 1 << 31  # an exchange's bodies, whatever the proxy accepted


class RecorderConfig(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    journal_dir: str
    quarantine_dir: str
    store_bodies: bool
    queue_size: int
    queue_bytes: int
    batch_size: int
    thread_rule: ThreadRule
    slow_query_ms: int
    debug_sql: bool
    log_level: str
    log_format: str
    link: bool  # run the conversation linker here too


class Final(msgspec.Struct, frozen=True, array_like=True):
    """What the proxy may still set on an exchange after writing it ahead."""

    status: int
    outcome: Outcome
    error: str | None
    duration_s: float


class Counts(msgspec.Struct, frozen=True, array_like=True):
    stored: int
    journaled: int
    quarantined: int


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    level: int
    message: str  # with its arguments, and the traceback of an exception after it
    created: float
    extra: dict[str, Any]  # the record's own fields (``extra=``), when msgpack can carry them


_encode = msgspec.msgpack.Encoder(enc_hook=str).encode  # an ``extra`` value of another type: its str
_decode_final = msgspec.msgpack.Decoder(Final).decode
_decode_counts = msgspec.msgpack.Decoder(Counts).decode
_decode_log = msgspec.msgpack.Decoder(LogLine).decode


def exchange_frame(sequence: int, exchange: Exchange, record: bytes) -> bytes:
    """The whole ``X`` frame (its length header included) for a write-ahead ``record`` as
    ``encode_record`` made it: one copy of the record, however large its bodies."""
    final = _encode(Final(exchange.status, exchange.outcome, exchange.error, exchange.duration_s))
    body = memoryview(record)[LENGTH.size :]  # the record without its own length prefix
    head = EXCHANGE + _EXCHANGE_HEAD.pack(sequence, len(final))
    return b"".join((HEADER.pack(len(head) + len(final) + len(body)), head, final, body))


def read_exchange(payload: bytes) -> tuple[int, Exchange]:
    """The sequence number and the exchange of an ``X`` frame's payload (after its kind byte)."""
    sequence, final_length = _EXCHANGE_HEAD.unpack_from(payload)
    start = _EXCHANGE_HEAD.size
    final = _decode_final(payload[start : start + final_length])
    exchange = decode_record_body(payload[start + final_length :])
    exchange.status, exchange.outcome, exchange.error = final.status, final.outcome, final.error
    exchange.duration_s = final.duration_s
    return sequence, exchange


def settled_frame(sequences: list[int]) -> bytes:
    return SETTLED + b"".join(_SEQUENCE.pack(sequence) for sequence in sequences)


def read_settled(payload: bytes) -> list[int]:
    return [sequence for (sequence,) in _SEQUENCE.iter_unpack(payload)]


def counts_frame(counts: Counts) -> bytes:
    return COUNTS + _encode(counts)


def read_counts(payload: bytes) -> Counts:
    return _decode_counts(payload)


def log_frame(line: LogLine) -> bytes:
    return LOG + _encode(line)


def read_log(payload: bytes) -> LogLine:
    return _decode_log(payload)
