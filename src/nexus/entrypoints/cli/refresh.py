"""A forced OAuth refresh, through the same coordination the proxy uses."""

from __future__ import annotations

import click
import msgspec

from nexus.domain.credentials import CredentialFileInvalid
from nexus.domain.errors import AuthenticationFailed
from nexus.entrypoints.container import build_container
from nexus.entrypoints.http.container_plugin import resolve
from nexus.entrypoints.settings import Settings


async def refresh_now(settings: Settings, name: str) -> int:
    """Refresh ``name``'s token and return its new expiry (epoch ms)."""
    # A refresh reads and writes the credential files only (their lock coordinates it with
    # running proxies): the database is not opened, so it cannot warn about storage either.
    container = build_container(msgspec.structs.replace(settings, storage_enabled=False))
    opened = container.init_resources()
    if opened is not None:
        await opened
    try:
        store = await resolve(container.credential_store)
        try:
            stored = await store.find([name])
        except CredentialFileInvalid as exc:
            raise click.ClickException(str(exc)) from None
        if stored is None or stored.credential.oauth is None:
            raise click.ClickException(f"No OAuth credential file for {name}")
        keeper = await resolve(container.keep_oauth_fresh)
        try:
            tokens = await keeper.execute(stored, force=True)
        except AuthenticationFailed as exc:
            raise click.ClickException(exc.message) from None
        return tokens.expires_at or 0
    finally:
        closed = container.shutdown_resources()
        if closed is not None:
            await closed
