"""Newly recorded requests as they are stored, by any proxy process: what live views stream.

A subscriber iterates ``LiveUpdate`` items, for example to send each as a Server-Sent Event::

    async with feed.subscribe() as updates:
        async for update in updates:
            ...  # the iteration ends when the feed closes (shutdown)

The first item tells the state of the feed (``live``, no requests). Afterwards each item carries
the requests recorded since the previous one, or a change of state, or both. A request may come
again (a batch replayed from the journal after an outage): key views by ``request_id``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import msgspec

from nexus.application.ports.exchange_queries import RequestSummary


class LiveUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One item of a subscription.

    ``requests``: requests newly recorded (in any process), oldest first; often one, may be none.
    ``links_changed``: the conversation linker has linked rows since the previous item, so
    conversation views (and the links of requests already shown) may be stale.
    ``gap``: items were lost just before this one, because the subscriber fell behind (its queue
    is bounded: the oldest items are dropped) or the feed could not hear or read the database
    for a while: a view should reload what it shows instead of trusting increments.
    ``live``: the feed hears the database; ``False`` while it is away (the feed reconnects by
    itself and then sends ``live=True`` with ``gap=True``).
    """

    requests: list[RequestSummary] = []
    links_changed: bool = False
    gap: bool = False
    live: bool = True


@runtime_checkable
class LiveFeed(Protocol):
    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[LiveUpdate]]:
        """Updates from the moment the context is entered until it is left.

        Entering waits briefly (a few seconds at most) for the feed to hear the database, so
        what is recorded after it returns is delivered; it never raises when the database is
        away (the first item then says ``live=False``). Waiting for the next item may be
        cancelled safely (e.g. ``asyncio.wait_for`` to send keep-alive comments).
        """
        ...
