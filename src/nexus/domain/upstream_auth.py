"""The credential a request is forwarded with, and where it came from."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from nexus.domain.credentials import is_oauth_token
from nexus.domain.traffic_limits import TrafficLimits

AuthSource = Literal["domain_file", "client", "default"]


class UpstreamAuth(msgspec.Struct, frozen=True, kw_only=True):
    """What authenticates a request upstream.

    ``replaces_client_auth`` is false only when the client's own ``authorization`` or
    ``x-api-key`` header is passed through as it is.
    """

    kind: Literal["api_key", "oauth"]
    secret: str
    source: AuthSource
    account_id: str
    limits: TrafficLimits | None = None  # the domain file's enforced limits
    window_output_tokens: int | None = None  # the account's 5-hour budget, for the runaway guard
    pooled: bool = False  # chosen from the domain's pool of accounts

    @property
    def replaces_client_auth(self) -> bool:
        return self.source != "client"

    @property
    def is_oauth(self) -> bool:
        return self.kind == "oauth"

    def header(self) -> tuple[bytes, bytes]:
        if self.kind == "oauth":
            return (b"authorization", b"Bearer " + self.secret.encode())
        return (b"x-api-key", self.secret.encode())


class ClientAuth(msgspec.Struct, frozen=True):
    """The credentials a client presented, if any."""

    bearer: str | None = None
    api_key: str | None = None

    @property
    def present(self) -> bool:
        return bool(self.bearer or self.api_key)

    def key_id(self) -> str | None:
        """A name for the presented key that is not the key: a hash of it, cut short."""
        secret = self.bearer or self.api_key
        return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else None

    def as_upstream(self, account_id: str) -> UpstreamAuth:
        """Pass the client's own credential through; an OAuth bearer still needs the beta."""
        if self.bearer:
            kind: Literal["api_key", "oauth"] = "oauth" if is_oauth_token(self.bearer) else "api_key"
            return UpstreamAuth(kind=kind, secret=self.bearer, source="client", account_id=account_id)
        return UpstreamAuth(kind="api_key", secret=self.api_key or "", source="client", account_id=account_id)


def default_auth(secret: str, account_id: str) -> UpstreamAuth:
    """``CLAUDE_API_KEY``: an OAuth access token there is sent as one."""
    kind: Literal["api_key", "oauth"] = "oauth" if is_oauth_token(secret) else "api_key"
    return UpstreamAuth(kind=kind, secret=secret, source="default", account_id=account_id)


def read_client_auth(headers: list[tuple[bytes, bytes]]) -> ClientAuth:
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key" and value.strip():
            api_key = value.decode("latin-1").strip()
    return ClientAuth(bearer=bearer, api_key=api_key)
