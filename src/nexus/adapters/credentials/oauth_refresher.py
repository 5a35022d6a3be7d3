"""The OAuth token endpoint over HTTP."""

from __future__ import annotations

import httpx
import msgspec

from nexus import __version__
from nexus.application.ports import TokenRefreshFailed
from nexus.domain.credentials import OAUTH_BETA, RefreshedTokens


class _TokenError(msgspec.Struct):
    error: str | None = None
    error_description: str | None = None


class HttpxTokenRefresher:
    """Refresh grants against ``token_url`` (JSON body, as Claude Code sends them)."""

    def __init__(self, *, client: httpx.AsyncClient, token_url: str, client_id: str) -> None:
        self._client = client
        self._token_url = token_url
        self._client_id = client_id

    async def refresh(self, refresh_token: str) -> RefreshedTokens:
        payload = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self._client_id}
        try:
            response = await self._client.post(
                self._token_url,
                json=payload,
                headers={"anthropic-beta": OAUTH_BETA, "user-agent": f"claude-nexus/{__version__}"},
            )
        except httpx.HTTPError as exc:
            raise TokenRefreshFailed(f"token endpoint unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise TokenRefreshFailed(_describe_failure(response))
        try:
            return msgspec.json.decode(response.content, type=RefreshedTokens)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            raise TokenRefreshFailed("token endpoint answered 200 without usable tokens") from None


def _describe_failure(response: httpx.Response) -> str:
    try:
        detail = msgspec.json.decode(response.content, type=_TokenError)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return f"token endpoint answered {response.status_code}"
    reason = ": ".join(part for part in (detail.error, detail.error_description) if part)
    hint = " (the refresh token is no longer valid: log in again)" if detail.error == "invalid_grant" else ""
    return f"token endpoint answered {response.status_code} {reason}{hint}".rstrip()
