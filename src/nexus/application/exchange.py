"""One finished exchange, as the proxy hands it on after the client has its answer."""

from __future__ import annotations

import msgspec

from nexus.domain.outcome import Outcome
from nexus.domain.upstream_attempts import UpstreamAttempt


class Exchange(msgspec.Struct, kw_only=True):
    """Everything known about a request and its response once it is over.

    Offsets (``*_s``) are seconds since the request arrived. ``response_chunks`` are the body
    bytes exactly as relayed (possibly compressed, per ``content-encoding``).
    """

    request_id: str
    method: str
    path: str
    query_string: bytes
    domain: str | None
    account_id: str | None = None
    requested_model: str | None = None
    stream: bool = False
    request_headers: list[tuple[bytes, bytes]]
    request_body: bytes | None = None
    status: int = 0
    outcome: Outcome = "complete"
    error: str | None = None
    response_headers: list[tuple[bytes, bytes]] = msgspec.field(default_factory=list)
    response_chunks: list[bytes] = msgspec.field(default_factory=list)
    started_at_ms: int
    upstream_started_s: float | None = None
    first_byte_s: float | None = None
    duration_s: float = 0.0
    upstream_attempts: list[UpstreamAttempt] = msgspec.field(default_factory=list)

    @property
    def response_body(self) -> bytes:
        return b"".join(self.response_chunks)
