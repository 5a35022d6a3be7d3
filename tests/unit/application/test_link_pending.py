"""The linking loop's failure handling: a bad row stays alone, an unreachable store stops the loop."""

from __future__ import annotations

from typing import Any

import pytest

from nexus.application.linking.run import link_pending
from nexus.application.ports.conversation_history import Link, LinkingUnavailable, Node, Position
from nexus.domain.conversation.branches import MAIN
from tests.support.memory_history import MemoryHistory
from tests.unit.application.test_linking_scenarios import A1, U1, U2, at, body, response, user


class Failing(MemoryHistory):
    """A history whose parent lookup fails for one hash, with a given exception."""

    def __init__(self, bad_hash: str | None, error: Exception) -> None:
        super().__init__()
        self.bad_hash = bad_hash
        self.error = error

    async def with_message_hash(self, domain: str | None, message_hash: str, before: Position) -> list[Node]:
        if message_hash == self.bad_hash:
            raise self.error
        return await super().with_message_hash(domain, message_hash, before)


def conversation(history: MemoryHistory) -> list[Any]:
    first = history.add(body(U1), response(A1), ts=at(0))
    second = history.add(body(U1, A1, U2), ts=at(10))
    third = history.add(body(user("Unrelated question")), ts=at(20))
    return [first, second, third]


async def test_a_row_the_linker_fails_on_starts_its_own_conversation_and_the_rest_are_linked() -> None:
    history = Failing(None, RuntimeError("a bug"))
    first, second, third = conversation(history)
    history.bad_hash = second.facts.parent_hash

    counts = await link_pending(history.unit_of_work)

    assert counts.failed == 1
    assert history.link_of(second.id) == Link(conversation_id=second.id, branch_id=MAIN)
    assert history.link_of(first.id).conversation_id == first.id
    assert history.link_of(third.id).conversation_id == third.id


async def test_an_unreachable_store_stops_the_loop_without_deciding_anything() -> None:
    history = Failing(None, LinkingUnavailable("connection refused"))
    _, second, _ = conversation(history)
    history.bad_hash = second.facts.parent_hash

    with pytest.raises(LinkingUnavailable):
        await link_pending(history.unit_of_work)

    assert history.rows[second.id].pending
    history.bad_hash = None
    await history.link_all()
    assert history.link_of(second.id).parent_request_id is not None
