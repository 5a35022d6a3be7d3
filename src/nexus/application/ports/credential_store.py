"""Where per-domain credentials live."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import msgspec

from nexus.domain.credentials import CredentialFile, OAuthTokens


class StoredCredential(msgspec.Struct, frozen=True):
    """A credential and the key (``location``) it is stored under."""

    location: str
    name: str
    credential: CredentialFile


class CredentialEntry(msgspec.Struct, frozen=True):
    """One record of the store for listings: the credential, or why it cannot be used."""

    name: str
    credential: CredentialFile | None
    problem: str | None = None


@runtime_checkable
class CredentialStore(Protocol):
    async def find(self, names: Sequence[str]) -> StoredCredential | None:
        """The first credential stored under one of ``names``; edits are seen at once.

        Raises CredentialFileInvalid when the first one found cannot be used.
        """
        ...

    def exclusive(self, location: str) -> AbstractAsyncContextManager[None]:
        """Hold the credential exclusively, across every process sharing the store."""
        ...

    async def reload(self, location: str) -> StoredCredential:
        """Read the credential again, bypassing any cache (used under ``exclusive``)."""
        ...

    async def save_oauth(self, location: str, tokens: OAuthTokens) -> StoredCredential:
        """Replace the OAuth tokens atomically, keeping every other field of the record."""
        ...

    async def list_all(self) -> list[CredentialEntry]:
        """Every stored record, usable or not, sorted by name."""
        ...
