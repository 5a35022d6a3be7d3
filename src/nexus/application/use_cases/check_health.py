"""The state of each dependency."""

from __future__ import annotations

import msgspec

from nexus.application.ports.health import HealthProbe, ProbeResult


class HealthReport(msgspec.Struct, frozen=True):
    healthy: bool
    checks: dict[str, ProbeResult]


class CheckHealth:
    """Ask every probe; the service is healthy only when all of them are."""

    def __init__(self, *, probes: list[HealthProbe]) -> None:
        self._probes = probes

    async def execute(self) -> HealthReport:
        checks = {probe.probe_name: await probe.probe() for probe in self._probes}
        return HealthReport(healthy=all(result.healthy for result in checks.values()), checks=checks)
