"""Management API routes: token usage per account and domain, and ``/token-stats``."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

USAGE_HANDLERS: list[ControllerRouterHandler] = []
TOKEN_STATS_HANDLERS: list[ControllerRouterHandler] = []
