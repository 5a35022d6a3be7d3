"""``COLLECT_TEST_SAMPLES``: each exchange written as a JSON sample file, for building tests.

Named ``<request type>_<streaming|non_streaming>_<model>-<epoch ms>-<id>.json`` in
``TEST_SAMPLES_DIR``; headers with every credential masked; written to a temporary name,
flushed and renamed (a reader never sees half a file), in a thread off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.notifications.background import ExchangeWorker
from nexus.application.recording.row import measure
from nexus.domain import json_text
from nexus.domain.masking import masked_headers

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class TestSampleWriter(ExchangeWorker):
    __test__ = False  # not a pytest class, whatever its name says
    name = "test-samples"
    needs_response_body = True

    def __init__(self, directory: str | os.PathLike[str], *, queue_size: int = 1000) -> None:
        super().__init__(queue_size=queue_size)
        self.directory = Path(directory)
        self.written = 0

    async def handle(self, item: Exchange) -> None:
        await asyncio.to_thread(self._write, item)
        self.written += 1

    def _write(self, exchange: Exchange) -> None:
        measured = measure(exchange)
        mode = "streaming" if exchange.stream else "non_streaming"
        model = _UNSAFE.sub("_", exchange.requested_model or "unknown")[:80]
        kind = measured.request_type or "other"
        target = self.directory / f"{kind}_{mode}_{model}-{exchange.started_at_ms}-{exchange.request_id[:8]}.json"
        sample = {
            "request_id": exchange.request_id,
            "timestamp_ms": exchange.started_at_ms,
            "domain": exchange.domain,
            "request": {
                "method": exchange.method,
                "path": exchange.path,
                "query": exchange.query_string.decode("latin-1"),
                "headers": dict(masked_headers(exchange.request_headers)),
                "body": _readable(exchange.request_body),
            },
            "response": {
                "status": exchange.status,
                "state": measured.state,
                "headers": dict(masked_headers(exchange.response_headers)),
                "body": _readable(measured.response if measured.is_messages else exchange.response_body),
            },
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        with partial.open("wb") as handle:
            handle.write(_encoded(sample))
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)


def _encoded(sample: dict[str, Any]) -> bytes:
    text = json.dumps(sample, ensure_ascii=False, indent=2, default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a cut emoji): \u escapes keep it exact
        return json.dumps(sample, ensure_ascii=True, indent=2, default=str).encode("ascii")


def _readable(body: bytes | None) -> Any:
    """JSON as JSON, an event stream or other text as text, anything else as a note."""
    if not body:
        return None
    try:
        return json_text.loads(body)
    except ValueError:
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, not text)"
