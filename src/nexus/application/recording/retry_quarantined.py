"""Give quarantined exchanges another try, once a fix lets the store take them."""

from __future__ import annotations

from dataclasses import dataclass, field

from nexus.application.exchange import Exchange
from nexus.application.ports.exchange_store import ExchangeQuarantine, ExchangeStore, StoreRejected
from nexus.application.recording.recorder import refused_reason, unbuildable_reason
from nexus.application.recording.row import build_row
from nexus.domain.conversation.threading import ThreadRule


@dataclass
class RetryOutcome:
    stored: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # request id -> why, again


async def retry_quarantined(
    quarantine: ExchangeQuarantine, store: ExchangeStore, *, store_bodies: bool, thread_rule: ThreadRule = "any_client"
) -> RetryOutcome:
    """Store each quarantined exchange on its own; what is stored leaves the quarantine, what is
    refused again stays with the new reason.

    Raises StoreUnavailable (the store is down: nothing more can be told) with the entries
    not yet tried left where they are. Storing twice is harmless (the store skips a row it
    has), so this may run while the proxy runs, or run again after an interruption.
    """
    outcome = RetryOutcome()
    for name, exchange in quarantine.entries():
        reason = await _refusal(exchange, store, store_bodies=store_bodies, thread_rule=thread_rule)
        if reason is None:
            quarantine.release(name)
            outcome.stored += 1
        else:
            quarantine.put(exchange, reason)
            outcome.refused[exchange.request_id] = reason
    return outcome


async def _refusal(
    exchange: Exchange, store: ExchangeStore, *, store_bodies: bool, thread_rule: ThreadRule
) -> str | None:
    """Why the exchange could not be stored, or None once it is ."""
    try:
        row = build_row(exchange, store_bodies=store_bodies, thread_rule=thread_rule)
    except Exception as exc:  # noqa: BLE001 -- as in the recorder: this exchange stays put, the rest go on
        return unbuildable_reason(exc)
    try:
        await store.store([row])
    except StoreRejected as exc:
        return refused_reason(exc)
    return None
