"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

import os
import time

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from nexus import __version__
from nexus.application.use_cases.check_health import CheckHealth
from nexus.entrypoints.lifecycle import Lifecycle

_STARTED = time.monotonic()
# The same body with a 503: load balancers read the status, people the body.
_UNHEALTHY = {503: ResponseSpec(dict[str, object], description="A dependency is failing", generate_examples=False)}
_DRAINING = {503: ResponseSpec(dict[str, object], description="Shutting down", generate_examples=False)}


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 -- Litestar declares it as a plain attribute

    @get("/", operation_id="GetHealth", summary="State of each dependency", responses=_UNHEALTHY)
    async def health(
        self, check_health: NamedDependency[CheckHealth], lifecycle: NamedDependency[Lifecycle]
    ) -> Response[dict[str, object]]:
        """200 when every dependency is usable, 503 otherwise."""
        report = await check_health.execute()
        body: dict[str, object] = {
            "status": "ok" if report.healthy else "degraded",
            "service": "claude-nexus",
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - _STARTED, 1),
            "draining": lifecycle.draining,
            "checks": {
                name: {"status": "ok" if result.healthy else "failing", **result.detail}
                for name, result in report.checks.items()
            },
        }
        return Response(body, status_code=200 if report.healthy else 503)

    @get("/live", operation_id="GetLiveness", summary="The process is up")
    async def live(self) -> dict[str, bool]:
        return {"alive": True}

    @get("/ready", operation_id="GetReadiness", summary="The process takes traffic", responses=_DRAINING)
    async def ready(self, lifecycle: NamedDependency[Lifecycle]) -> Response[dict[str, object]]:
        """503 while shutting down, so a load balancer stops sending new requests."""
        if lifecycle.draining:
            return Response({"ready": False, "reason": "shutting down"}, status_code=503)
        return Response({"ready": True}, status_code=200)
