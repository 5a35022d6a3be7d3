"""Dependencies that report their own health."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec


class ProbeResult(msgspec.Struct, frozen=True):
    healthy: bool
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


@runtime_checkable
class HealthProbe(Protocol):
    @property
    def probe_name(self) -> str: ...

    async def probe(self) -> ProbeResult:
        """A quick, side-effect-free check of this dependency."""
        ...
