"""Link waiting requests, in order, one unit of work at a time (ADR 8).

Requests are linked in the order ``(ts, id)`` of their start, but they are stored when they
end, so a long request can arrive after later ones were linked. Such a late request is linked
in its place and the later rows that may depend on it are put back on the queue; whenever a
re-linked row's link changes, the rows linked to it are re-linked too. The result is the same
as linking everything in order at once, which is what the rebuild command does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import msgspec

from nexus.application.linking.linker import ConversationLinker
from nexus.application.ports.conversation_history import Link, LinkingUnavailable, LinkWork, Subject
from nexus.domain.conversation.branches import MAIN

log = logging.getLogger(__name__)


class LinkCounts(msgspec.Struct):
    linked: int = 0
    changed: int = 0  # rows linked before whose link is now different
    requeued: int = 0
    failed: int = 0  # rows the linker failed on, linked as conversations of their own

    def add(self, other: LinkCounts) -> None:
        self.linked += other.linked
        self.changed += other.changed
        self.requeued += other.requeued
        self.failed += other.failed


UnitOfWork = Callable[[], AbstractAsyncContextManager[LinkWork | None]]


class _Failed(Exception):
    """The linker failed on one row: the unit of work is abandoned (its transaction rolled
    back) and the row is linked on its own in the next one."""


async def link_pending(unit_of_work: UnitOfWork, *, batch_size: int = 200) -> LinkCounts:
    """Link everything waiting. ``unit_of_work`` opens one transaction and yields the work in
    it, or None when another process holds the linking lock (it will do the work)."""
    total = LinkCounts()
    failed: set[uuid.UUID] = set()
    while True:
        try:
            async with unit_of_work() as work:
                if work is None:
                    return total
                counts = await _link_batch(work, batch_size, failed)
        except _Failed:
            total.failed += 1
            continue
        total.add(counts)
        if counts.linked == 0:
            return total


async def _link_batch(work: LinkWork, batch_size: int, failed: set[uuid.UUID]) -> LinkCounts:
    counts = LinkCounts()
    linker = ConversationLinker(work)
    for subject in await work.pending(batch_size):
        link = await _link_one(linker, subject, failed)
        await work.save(subject, link)
        counts.linked += 1
        requeued = 0
        if subject.first_time and await work.linked_after(subject):
            requeued += await work.requeue_dependents(subject, link)
        if subject.previous is not None and subject.previous != link:
            counts.changed += 1
            requeued += await work.requeue_children(subject)
        if requeued:
            counts.requeued += requeued
            break  # rows went back on the queue behind this one: take the queue again, in order
    return counts


async def _link_one(linker: ConversationLinker, subject: Subject, failed: set[uuid.UUID]) -> Link:
    """The subject's link. A request the linker fails on (a bug, odd data) starts a conversation
    of its own rather than stopping every later request from being linked."""
    if subject.id in failed:
        return Link(conversation_id=subject.id, branch_id=MAIN)
    try:
        return await linker.link(subject)
    except LinkingUnavailable:
        raise
    except Exception as exc:
        log.exception("Linking exchange %s failed; it starts a conversation of its own", subject.id)
        failed.add(subject.id)
        raise _Failed from exc
