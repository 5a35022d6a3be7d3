"""Sub-agent totals rolled up over nested launches, from the per-sub-agent rows SQL returns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from nexus.adapters.persistence.conversation_queries import _rolled_up

START = datetime(2026, 11, 23, tzinfo=UTC)


def row(number: int, *, launched_by: int | None = None, cost: str | None = "0.001000000") -> Any:
    """Sub-agent ``subtask_<number>``, one request each, launched from the main line or from
    the request of sub-agent ``launched_by``."""
    return SimpleNamespace(
        tool_use_id=f"toolu_{number}",
        spawner_id=uuid.UUID(int=launched_by or 0),
        branch_id=f"subtask_{number}",
        requests=1,
        input_tokens=10,
        output_tokens=number,
        cost_usd=None if cost is None else Decimal(cost),
        first_at=START + timedelta(seconds=number),
        agent_calls=[{"id": f"toolu_{number}", "description": f"Agent {number}"}, {"id": "other"}],
        spawner_is_subtask=launched_by is not None,
        spawner_tool_use_id=None if launched_by is None else f"toolu_{launched_by}",
    )


def test_each_sub_agent_adds_up_every_sub_agent_nested_under_it_in_launch_order() -> None:
    rows = [row(4, launched_by=3), row(10), row(2), row(3, launched_by=2, cost=None), row(1)]

    agents = {agent.branch_id: agent for agent in _rolled_up(rows)}

    assert list(agents) == ["subtask_1", "subtask_2", "subtask_3", "subtask_4", "subtask_10"]
    two, three, four = agents["subtask_2"], agents["subtask_3"], agents["subtask_4"]
    assert (two.request_count, two.output_tokens, two.cost_usd) == (3, 2 + 3 + 4, "0.002000000")
    assert two.nested_branch_ids == ["subtask_3", "subtask_4"]
    assert (three.parent_tool_use_id, three.nested_branch_ids, three.cost_usd) == (
        "toolu_2",
        ["subtask_4"],
        "0.001000000",
    )
    assert (four.request_count, four.nested_branch_ids, four.description) == (1, [], "Agent 4")
    assert agents["subtask_1"].parent_tool_use_id is None


def test_an_unpriced_sub_agent_costs_nothing_known_and_a_cycle_ends() -> None:
    looped = [row(1, launched_by=2, cost=None), row(2, launched_by=1, cost=None)]

    agents = {agent.branch_id: agent for agent in _rolled_up(looped)}

    assert (agents["subtask_1"].request_count, agents["subtask_1"].nested_branch_ids) == (2, ["subtask_2"])
    assert agents["subtask_1"].cost_usd is None
