"""The recorder process: ``python -m nexus.entrypoints.recorder_child`` (ADR 20).

Started by the proxy (``adapters.recorder_process``), one per worker. It reads exchanges from
stdin and runs the recorder (rows, conversation facts, storing, the journal and the
quarantine) and the conversation linker on an event loop of its own, so none of that costs
the proxy's. It acknowledges each exchange once it is stored, quarantined or journaled; at
the end of stdin it stores what it has (or journals it) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Any

import msgspec
import uvloop

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.linking import Linker
from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.adapters.pipe_frames import frame, read_frame
from nexus.adapters.recorder_process.protocol import (
    EXCHANGE,
    MAX_FRAME,
    REPLAY,
    Counts,
    LogLine,
    RecorderConfig,
    counts_frame,
    log_frame,
    read_exchange,
    settled_frame,
)
from nexus.application.exchange import Exchange
from nexus.application.recording.recorder import ExchangeRecorder
from nexus.entrypoints.logs import configure_logging

ACK_INTERVAL_S = 0.005  # acknowledgements gathered a moment: one write for many
# Below the proxy's priority: on a busy machine answering comes first, and the backlog waits
# (acknowledged later, journaled past RECORDER_QUEUE_BYTES). Measured at c=32 on two cores:
# the proxy kept 94-95 % of a core against 81 % at the same priority.
NICENESS = 10


class _Acknowledgements:
    """The recorder's write-ahead log, as seen from here: an exchange's mark is the proxy's
    sequence number for it, and settling it tells the proxy (in batches)."""

    def __init__(self) -> None:
        self.next_mark: int | None = None
        self.settled: list[int] = []
        self.wake = asyncio.Event()

    def append(self, exchange: Exchange) -> object | None:
        mark, self.next_mark = self.next_mark, None
        return mark

    def settle(self, mark: object | None) -> None:
        if isinstance(mark, int):
            self.settled.append(mark)
            self.wake.set()

    def close(self) -> None:
        pass

    async def sync_forever(self, interval_s: float) -> None:
        pass  # the proxy's log is the proxy's to fsync


class _Pipe:
    """Frames to the proxy on stdout, kept apart from fd 1 (which then goes to stderr, so a
    stray print() of a library cannot break them); one writer at a time, since logging may
    come from another thread."""

    def __init__(self) -> None:
        self._file = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        self._lock = threading.Lock()

    def send(self, *payloads: bytes) -> None:
        with self._lock:
            self._file.write(b"".join(frame(payload) for payload in payloads))
            self._file.flush()


class _ToProxy(logging.Handler):
    """Every log record to the proxy, which logs it as its own."""

    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self._pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            extra = {key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS}
            line = LogLine(name=record.name, level=record.levelno, message=message, created=record.created, extra=extra)
            self._pipe.send(log_frame(line))
        except Exception:  # noqa: BLE001 -- logging must never break the recorder
            self.handleError(record)


_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def _flush(pipe: _Pipe, acks: _Acknowledgements, recorder: ExchangeRecorder) -> None:
    if acks.settled:
        settled, acks.settled = acks.settled, []
        pipe.send(
            settled_frame(settled), counts_frame(Counts(recorder.stored, recorder.journaled, recorder.quarantined))
        )


async def _acknowledge_forever(pipe: _Pipe, acks: _Acknowledgements, recorder: ExchangeRecorder) -> None:
    while True:
        await acks.wake.wait()
        acks.wake.clear()
        await asyncio.sleep(ACK_INTERVAL_S)
        _flush(pipe, acks, recorder)


async def _run(config: RecorderConfig, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
    url, slow_ms = config.database_url, config.slow_query_ms
    async with open_engine(url, slow_query_ms=slow_ms, debug_sql=config.debug_sql) as engine:
        acks = _Acknowledgements()
        recorder = ExchangeRecorder(
            store=SqlAlchemyExchangeStore(engine),
            journal=FileJournal(config.journal_dir),
            quarantine=FileQuarantine(config.quarantine_dir),
            store_bodies=config.store_bodies,
            queue_size=config.queue_size,
            queue_bytes=config.queue_bytes,
            batch_size=config.batch_size,
            write_ahead=acks,
            thread_rule=config.thread_rule,
        )
        await recorder.start()
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(_acknowledge_forever(pipe, acks, recorder))]
        if config.link:
            tasks.append(asyncio.create_task(Linker(engine).run(), name="conversation-linker"))
        try:
            while (payload := await read_frame(reader, MAX_FRAME)) is not None:
                kind = payload[:1]
                if kind == EXCHANGE:
                    acks.next_mark, exchange = read_exchange(payload[1:])
                    recorder.observe(exchange)
                elif kind == REPLAY:
                    tasks.append(asyncio.create_task(recorder.replay_journal()))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await recorder.stop()
            _flush(pipe, acks, recorder)


async def main() -> None:
    pipe = _Pipe()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    first = await read_frame(reader)
    if first is None:
        return
    config = msgspec.json.decode(first, type=RecorderConfig)
    configure_logging(config.log_level)  # levels, quiet libraries; then the proxy writes them
    logging.getLogger().handlers[:] = [_ToProxy(pipe)]
    await _run(config, reader, pipe)


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the proxy decides when this ends (its stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # a container may forbid it: recording still works
        os.nice(NICENESS)
    uvloop.run(main())
