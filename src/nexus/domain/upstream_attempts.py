"""What the exchange records of its upstream attempts, so retries, pool failovers and the
circuit breaker are visible instead of only logged.

Nothing is recorded when the first attempt answers with the circuit closed (the common case
costs nothing): an exchange with no entries went upstream once, circuit closed, or never went
upstream at all. Entries are kept for every attempt that did not become the answer (a retry, a
pool's failover, a request the open circuit refused), and for the attempt that did when the
circuit was not closed around it (the half-open probe, a failure that left the circuit open).
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class UpstreamAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One upstream attempt of an exchange, in the order they were made. An exchange with none
    went upstream once with the circuit closed (or never went upstream)."""

    # The descriptions are the OpenAPI docs of GET /api/requests/{id}.
    number: Annotated[int, msgspec.Meta(description="1 for the first attempt.")]
    status: Annotated[
        int | None,
        msgspec.Meta(description="Upstream's status; null when it never answered (error, timeout, not sent)."),
    ]
    reason: Annotated[
        str,
        msgspec.Meta(description='What happened: "answered 529", "connection error: ...", "circuit open: not sent".'),
    ]
    wait_s: Annotated[float, msgspec.Meta(description="Seconds waited before the next attempt (0 for the last).")]
    account_id: Annotated[
        str | None, msgspec.Meta(description="The credential it went with, by its non-secret name (as the exchange's).")
    ] = None
    circuit: Annotated[
        str | None, msgspec.Meta(description="The circuit breaker's state right after it: closed, open or half-open.")
    ] = None
    sent: Annotated[
        bool, msgspec.Meta(description="False when the open circuit refused it: upstream was not called.")
    ] = True
    answered: Annotated[
        bool,
        msgspec.Meta(
            description="Its outcome is what the client got; listed only when the circuit was not closed around it "
            "(a half-open probe, a failure that left the circuit open)."
        ),
    ] = False


def next_number(attempts: list[UpstreamAttempt]) -> int:
    """Every attempt before this one is listed (each that was not the answer has its entry),
    so its number is one past theirs, whichever layer (retries, failover, breaker) notes it."""
    return len(attempts) + 1
