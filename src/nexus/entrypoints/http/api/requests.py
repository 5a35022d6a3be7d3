"""Management API routes: requests."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

REQUEST_HANDLERS: list[ControllerRouterHandler] = []
