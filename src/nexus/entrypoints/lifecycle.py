"""Whether this process is shutting down (readiness turns false while it drains)."""

from __future__ import annotations

import weakref


class Lifecycle:
    def __init__(self) -> None:
        self.draining = False
        _instances.add(self)

    def start_draining(self) -> None:
        self.draining = True


_instances: weakref.WeakSet[Lifecycle] = weakref.WeakSet()


def drain_all() -> None:
    """Mark every app of this process as draining (called from the signal handler)."""
    for lifecycle in list(_instances):
        lifecycle.start_draining()
