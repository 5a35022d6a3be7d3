"""Credential files and the rules for choosing and refreshing what goes upstream.

The file format is the original claude-nexus one, kept exactly so existing
``<host>.credentials.json`` files work unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Literal

import msgspec

from nexus.domain.traffic_limits import TrafficLimits

OAUTH_BETA = "oauth-2025-04-20"
OAUTH_ACCESS_TOKEN_PREFIX = "sk-ant-oat"  # noqa: S105 -- a prefix, not a secret
REFRESH_MARGIN_MS = 60_000
DEFAULT_SCOPES = ("org:create_api_key", "user:profile", "user:inference")


class CredentialFileInvalid(Exception):
    """A credential file that cannot be used; the message never quotes its content."""


class OAuthTokens(msgspec.Struct, rename="camel", omit_defaults=True):
    access_token: str
    refresh_token: str | None = None
    expires_at: int | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    is_max: bool | None = None

    def needs_refresh(self, now_ms: int) -> bool:
        """Due one minute before expiry, so no request is sent with a token about to lapse."""
        return self.expires_at is not None and now_ms >= self.expires_at - REFRESH_MARGIN_MS

    def is_expired(self, now_ms: int) -> bool:
        return self.expires_at is not None and now_ms >= self.expires_at


_PositiveTokens = Annotated[int, msgspec.Meta(gt=0)]
_PositiveUsd = Annotated[float, msgspec.Meta(gt=0)]


WINDOW_LIMITS = ("five_hour_output_tokens", "five_hour_cost_usd", "seven_day_output_tokens", "seven_day_cost_usd")
LIMIT_LABELS = {
    "five_hour_output_tokens": "5 h output tokens",
    "five_hour_cost_usd": "5 h cost",
    "seven_day_output_tokens": "7 d output tokens",
    "seven_day_cost_usd": "7 d cost",
}


class AccountLimits(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The operator's own budget for an account, the denominator of "percentage used", and
    the domain's enforced traffic limits.

    Each window limit is optional and applies to a trailing window: the last 5 hours or the
    last 7 days, over every domain recorded under the account. ``daily_usd`` is the budget of
    the credential file's own domain for each UTC day. These are not enforced: the usage API
    reports the share used, and alerts are sent as shares cross ``ALERT_THRESHOLDS``. The
    per-minute, stream and ``max_daily_usd`` limits are enforced (429). Unknown keys are
    ignored.
    """

    five_hour_output_tokens: _PositiveTokens | None = None
    five_hour_cost_usd: _PositiveUsd | None = None
    seven_day_output_tokens: _PositiveTokens | None = None
    seven_day_cost_usd: _PositiveUsd | None = None
    daily_usd: _PositiveUsd | None = None
    # Enforced: over one of these the proxy answers 429 (``TrafficLimits``).
    requests_per_minute: _PositiveTokens | None = None
    tokens_per_minute: _PositiveTokens | None = None
    concurrent_streams: _PositiveTokens | None = None
    max_daily_usd: _PositiveUsd | None = None

    def traffic(self) -> TrafficLimits | None:
        """The enforced limits of the domain, None when it sets none."""
        limits = TrafficLimits(
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            concurrent_streams=self.concurrent_streams,
            daily_usd=self.max_daily_usd,
        )
        return limits if limits.any else None

    def configured(self) -> dict[str, int | float]:
        """The window limits that are set, by name (``daily_usd`` is a domain's, not here)."""
        return {name: value for name in WINDOW_LIMITS if (value := getattr(self, name)) is not None}


_MEMBER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$"
PoolMember = Annotated[str, msgspec.Meta(pattern=_MEMBER)]


class CredentialFile(msgspec.Struct, kw_only=True):
    """One domain's credential: an API key, an OAuth login, or a pool of accounts, each one a
    credential file of its own (``accounts``: their names, without ``.credentials.json``), so
    each OAuth login refreshes and is saved exactly as a single account's does."""

    type: Literal["api_key", "oauth", "pool"]
    accounts: list[PoolMember] | None = None
    account_id: str | None = msgspec.field(default=None, name="accountId")
    api_key: str | None = None
    oauth: OAuthTokens | None = None
    client_api_key: str | None = None
    slack: dict[str, Any] | None = None
    limits: AccountLimits | None = None

    def __post_init__(self) -> None:
        if self.type == "api_key" and not self.api_key:
            raise ValueError("type is api_key but api_key is missing or empty")
        if self.type == "oauth" and (self.oauth is None or not self.oauth.access_token):
            raise ValueError("type is oauth but oauth.accessToken is missing or empty")
        if self.type == "pool" and not self.accounts:
            raise ValueError("type is pool but accounts (the credential files of its accounts) is missing or empty")
        if self.accounts and len(set(self.accounts)) != len(self.accounts):
            raise ValueError("an account is listed twice in accounts")


def parse_credential_file(data: bytes) -> CredentialFile:
    """Decode and validate a credential file; errors name the field, never a value."""
    try:
        return msgspec.json.decode(data, type=CredentialFile)
    except msgspec.ValidationError as exc:
        raise CredentialFileInvalid(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise CredentialFileInvalid("not valid JSON") from None
    except RecursionError:  # msgspec's answer to nesting past its stack (in ``slack``, say)
        raise CredentialFileInvalid("nested too deeply to read") from None


class RefreshedTokens(msgspec.Struct):
    """The token endpoint's answer, as much of it as the proxy uses."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


def apply_refresh(previous: OAuthTokens, answer: RefreshedTokens, now_ms: int) -> OAuthTokens:
    """New tokens after a refresh; a response without a refresh token keeps the old one."""
    return OAuthTokens(
        access_token=answer.access_token,
        refresh_token=answer.refresh_token or previous.refresh_token,
        expires_at=now_ms + answer.expires_in * 1000,
        scopes=answer.scope.split() if answer.scope else (previous.scopes or list(DEFAULT_SCOPES)),
        is_max=previous.is_max,
    )


def merge_oauth(document: dict[str, Any], tokens: OAuthTokens) -> dict[str, Any]:
    """The file's JSON with fresh tokens: every other key (accountId, client_api_key, slack,
    and anything unknown) survives untouched."""
    merged = dict(document)
    merged["oauth"] = {**(document.get("oauth") or {}), **msgspec.to_builtins(tokens)}
    return merged


def secrets_match(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; hashing first makes the time independent of length too."""
    if presented is None:
        return False
    return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def is_oauth_token(secret: str) -> bool:
    return secret.startswith(OAUTH_ACCESS_TOKEN_PREFIX)
