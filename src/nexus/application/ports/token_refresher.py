"""The OAuth token endpoint."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from nexus.domain.credentials import RefreshedTokens


class TokenRefreshFailed(Exception):
    """The token endpoint refused or could not be reached; the message holds no secret."""


@runtime_checkable
class TokenRefresher(Protocol):
    async def refresh(self, refresh_token: str) -> RefreshedTokens:
        """Exchange a refresh token for new tokens. Raises TokenRefreshFailed."""
        ...
