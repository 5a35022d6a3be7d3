"""Management API routes: stats."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

STATS_HANDLERS: list[ControllerRouterHandler] = []
