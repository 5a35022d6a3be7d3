"""Branch names: ``main``, ``branch_<UTC YYYYMMDDHHMMSS>``, ``subtask_<N>``, ``compact_<UTC HHMMSS>``."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Literal

MAIN = "main"
BranchKind = Literal["main", "branch", "subtask", "compact"]
_SUBTASK = re.compile(r"^subtask_(\d+)$")


def edit_branch(at: datetime, taken: Collection[str] = ()) -> str:
    """The branch opened by an edited (or otherwise diverging) message sent at ``at``."""
    return _unique(f"branch_{at.astimezone(UTC):%Y%m%d%H%M%S}", taken)


def compact_branch(at: datetime, taken: Collection[str] = ()) -> str:
    """The branch that continues a conversation after a compaction sent at ``at``."""
    return _unique(f"compact_{at.astimezone(UTC):%H%M%S}", taken)


def subtask_branch(number: int) -> str:
    return f"subtask_{number}"


def subtask_number(branch: str | None) -> int | None:
    match = _SUBTASK.match(branch or "")
    return int(match.group(1)) if match else None


def branch_kind(branch: str) -> BranchKind:
    if branch == MAIN:
        return "main"
    if branch.startswith("subtask_"):
        return "subtask"
    if branch.startswith("compact_"):
        return "compact"
    return "branch"


def _unique(name: str, taken: Collection[str]) -> str:
    """Two branches opened in the same second (or compactions at the same time of day) of one
    conversation get ``_2``, ``_3``… rather than sharing a name."""
    if name not in taken:
        return name
    suffix = 2
    while f"{name}_{suffix}" in taken:
        suffix += 1
    return f"{name}_{suffix}"
