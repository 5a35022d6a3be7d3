"""The proxy's side of the recorder process (``nexus.entrypoints.recorder_child``, ADR 20).

The proxy's event loop keeps one job per exchange: write it ahead (one ``write`` to the log)
and hand the same bytes to the child through a pipe. Building rows, conversation facts,
storing, linking and the journal all run in the child, on the other core.

Nothing is lost when the child is slow, dies or is killed: an exchange stays in the
write-ahead log (and in memory, to be sent again to a new child) until the child says it is
stored, quarantined or journaled. Past ``pending_bytes`` unacknowledged, exchanges go to the
proxy's own journal instead of the pipe, and the child is told to replay that segment once
the backlog is half gone. A child that exits is started again and sent what it had not
acknowledged (storing is idempotent, so an exchange it stored just before dying is not
doubled). The child exits at the end of its stdin, so it never outlives the proxy for long,
even one killed with SIGKILL (it stores what it has first).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

import msgspec

from nexus.adapters.persistence.journal import FileJournal, encode_record
from nexus.adapters.persistence.write_ahead import WriteAheadLog
from nexus.adapters.pipe_frames import Outbox, frame, read_frame
from nexus.adapters.recorder_process.protocol import (
    COUNTS,
    LOG,
    REPLAY,
    SETTLED,
    Counts,
    LogLine,
    RecorderConfig,
    exchange_frame,
    read_counts,
    read_log,
    read_settled,
)
from nexus.application.exchange import Exchange

log = logging.getLogger(__name__)

STOP_S = 60.0  # the child's last batches, or its journal when the database is away
RESTART_DELAY_S = 1.0
PIPE_LIMIT = 1 << 31
# Frames go to the child at most this often, in one write that wakes it once (Outbox): the
# exchanges are in the write-ahead log already, so only the row's arrival waits. Measured at
# c=32, four runs each, against handing them over every loop turn: the proxy's system time
# 50 -> 42.5 us a request (31 with recording off), throughput +8 % (3,762 -> 4,081 req/s).
SEND_EVERY_S = 0.005


class RecorderProcess:
    """``write_ahead`` and ``observe`` like ``ExchangeRecorder``, storing in a child process.

    ``on_stored`` hears the account (or else the domain) and the domain of each exchange the
    child has acknowledged: the limit watch sums its window from the database from then on.
    """

    needs_response_body = True  # usage, cost and the stored response come from it

    def __init__(
        self,
        *,
        command: list[str],
        config: RecorderConfig,
        write_ahead: WriteAheadLog,
        journal: FileJournal,
        pending_bytes: int,
        fsync_interval_s: float = 0.0,
        restart_delay_s: float = RESTART_DELAY_S,
        on_stored: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self._command = command
        self._config = frame(msgspec.json.encode(config))
        self._wal = write_ahead
        self._journal = journal
        self._pending_limit = pending_bytes
        self._fsync_interval_s = fsync_interval_s
        self._restart_delay_s = restart_delay_s
        self._on_stored = on_stored
        self._sequences = itertools.count(1)
        # Written ahead and not yet observed, by ``id(exchange)``: the log's mark and the record.
        self._written: dict[int, tuple[object | None, bytes]] = {}
        # Sent and not yet acknowledged, in order: the log's mark, the frame (to send again), and
        # the account and domain of the exchange (for ``on_stored``).
        self._pending: dict[int, tuple[object | None, bytes, str | None, str | None]] = {}
        self._pending_size = 0
        self._journal_open = False  # the pipe was full: exchanges went to our own journal
        self._child: asyncio.subprocess.Process | None = None
        self._outbox = Outbox(delay_s=SEND_EVERY_S)  # frames for the child's stdin, a few at a time
        self._reader: asyncio.Task[None] | None = None
        self._syncs: asyncio.Task[None] | None = None
        self._stopping = False
        self._child_counts = Counts(0, 0, 0)
        self._counted = Counts(0, 0, 0)  # what children before this one reported
        self._journaled_here = 0
        self.restarts = 0

    # -- the counts /health and the shutdown line report ---------------------------------------

    @property
    def stored(self) -> int:
        return self._counted.stored + self._child_counts.stored

    @property
    def journaled(self) -> int:
        return self._counted.journaled + self._child_counts.journaled + self._journaled_here

    @property
    def quarantined(self) -> int:
        return self._counted.quarantined + self._child_counts.quarantined

    def detail(self) -> dict[str, object]:
        """For ``/health``: the child's pid, how often it was started again, what it has not
        acknowledged yet (in the pipe or being stored)."""
        child = self._child
        return {
            "pid": child.pid if child is not None else None,
            "restarts": self.restarts,
            "unacknowledged": len(self._pending),
        }

    # -- the hot path ---------------------------------------------------------------------------

    def write_ahead(self, exchange: Exchange) -> None:
        """Before the client's last byte: from here on a crash loses nothing."""
        key = id(exchange)
        if key not in self._written:
            record = encode_record(exchange)
            self._written[key] = (self._wal.append_record(record), record)

    def observe(self, exchange: Exchange) -> None:
        self.write_ahead(exchange)  # a no-op when the proxy did it already
        mark, record = self._written.pop(id(exchange))
        self._release_journal()
        stdin = self._stdin()
        if self._journal_open or stdin is None or self._pending_size + len(record) > self._pending_limit:
            self._to_journal(exchange, mark)
            return
        sequence = next(self._sequences)
        data = exchange_frame(sequence, exchange, record)
        self._pending[sequence] = (mark, data, exchange.account_id or exchange.domain, exchange.domain)
        self._pending_size += len(data)
        self._outbox.send(stdin, data)

    def _to_journal(self, exchange: Exchange, mark: object | None) -> None:
        """The child is behind (or being restarted): the exchange waits in our journal."""
        try:
            self._journal.append([exchange])
        except OSError as exc:
            # Still in the write-ahead log (unsettled), replayed at the next start.
            log.error("Exchange %s cannot be journaled (%s); the write-ahead log keeps it", exchange.request_id, exc)
            return
        self._journal_open = True
        self._journaled_here += 1
        self._wal.settle(mark)

    # -- the child --------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._start_child()
        if self._fsync_interval_s > 0:
            self._syncs = asyncio.create_task(self._wal.sync_forever(self._fsync_interval_s), name="write-ahead-fsync")

    async def _start_child(self) -> None:
        child = await asyncio.create_subprocess_exec(
            *self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=PIPE_LIMIT
        )
        assert child.stdin is not None
        self._outbox.discard()  # held for a child that is gone: all of it is in _pending, sent below
        child.stdin.write(self._config)
        for _, data, _, _ in self._pending.values():  # what a child before this one did not acknowledge
            child.stdin.write(data)
        self._child = child
        self._reader = asyncio.create_task(self._read(child), name="recorder-process-reports")

    def _stdin(self) -> asyncio.StreamWriter | None:
        stdin = self._child.stdin if self._child is not None else None
        return None if stdin is None or stdin.is_closing() else stdin

    async def _read(self, child: asyncio.subprocess.Process) -> None:
        assert child.stdout is not None
        while (payload := await read_frame(child.stdout)) is not None:
            kind, body = payload[:1], payload[1:]
            if kind == SETTLED:
                self._settle(read_settled(body))
            elif kind == COUNTS:
                self._child_counts = read_counts(body)
            elif kind == LOG:
                _log_as_ours(read_log(body))
        code = await child.wait()
        self._counted = Counts(
            self._counted.stored + self._child_counts.stored,
            self._counted.journaled + self._child_counts.journaled,
            self._counted.quarantined + self._child_counts.quarantined,
        )
        self._child_counts = Counts(0, 0, 0)
        if self._stopping:
            return
        self._child = None
        self.restarts += 1
        log.error(
            "The recorder process exited (%s) with %d exchanges unacknowledged; starting another",
            code,
            len(self._pending),
        )
        await asyncio.sleep(self._restart_delay_s)  # a child failing at start must not spin
        if not self._stopping:
            await self._start_child()

    def _settle(self, sequences: list[int]) -> None:
        for sequence in sequences:
            entry = self._pending.pop(sequence, None)
            if entry is not None:
                mark, data, account, domain = entry
                self._pending_size -= len(data)
                self._wal.settle(mark)
                if self._on_stored is not None and account:
                    self._on_stored(account, domain)
        self._release_journal()

    def _release_journal(self) -> None:
        """Once the backlog is half gone, the exchanges our journal took go to the child."""
        if self._journal_open and self._pending_size <= self._pending_limit // 2 and (stdin := self._stdin()):
            self._journal.close()  # and with it the segment's lock: the child may replay it now
            self._journal_open = False
            self._outbox.send(stdin, frame(REPLAY))

    async def stop(self) -> None:
        """Let the child store (or journal) what it has, then close the log: what is still
        unacknowledged stays in it for the next start."""
        self._stopping = True
        if self._syncs is not None:
            self._syncs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncs
        # Written ahead and never observed (cut off by the stop): the log keeps them for the next start.
        self._written.clear()
        child = self._child
        if child is not None and child.stdin is not None:
            self._outbox.flush()
            child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), STOP_S)
            except TimeoutError:
                log.error("The recorder process did not finish in %.0f s; the write-ahead log keeps the rest", STOP_S)
                child.kill()
                await child.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._journal.close()
        self._wal.close()


def _log_as_ours(line: LogLine) -> None:
    """A record of the child's, through this process's loggers and handlers."""
    logger = logging.getLogger(line.name)
    if logger.isEnabledFor(line.level):
        fields = {**line.extra, "name": line.name, "levelno": line.level, "levelname": logging.getLevelName(line.level)}
        fields.update(msg=line.message, args=None, created=line.created, msecs=line.created % 1 * 1000)
        logger.handle(logging.makeLogRecord(fields))
