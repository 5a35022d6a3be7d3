"""Ports: the Protocols adapters implement."""

from nexus.application.ports.credential_store import CredentialEntry, CredentialStore, StoredCredential
from nexus.application.ports.observer import ExchangeObserver, FanOut
from nexus.application.ports.system import Clock, IdGenerator
from nexus.application.ports.token_refresher import TokenRefresher, TokenRefreshFailed
from nexus.application.ports.upstream import UpstreamClient, UpstreamRequest, UpstreamResponse

__all__ = [
    "Clock",
    "CredentialEntry",
    "CredentialStore",
    "ExchangeObserver",
    "FanOut",
    "IdGenerator",
    "StoredCredential",
    "TokenRefreshFailed",
    "TokenRefresher",
    "UpstreamClient",
    "UpstreamRequest",
    "UpstreamResponse",
]
