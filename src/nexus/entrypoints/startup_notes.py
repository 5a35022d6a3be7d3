"""Warnings logged once at start where this proxy would behave differently from what a setup
carried over from the original claude-nexus-proxy expects."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.entrypoints.original_settings import unsupported_in
from nexus.entrypoints.settings import Settings


def startup_warnings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    notes = [
        f"{name} is a setting of the original claude-nexus-proxy that this proxy does not read: {advice}"
        for name, advice in unsupported_in(environ)
    ]
    if settings.enable_client_auth is None and (guarded := _domains_with_client_keys(settings.credentials_dir)):
        notes.append(
            "ENABLE_CLIENT_AUTH is not set: the client_api_key of "
            + ", ".join(guarded)
            + " is demanded of their clients (the original's default, false, ignored it). "
            "Set ENABLE_CLIENT_AUTH=true to keep this, or false to let any client use those domains"
        )
    if settings.client_setup_dir is None and Path("client-setup").is_dir():
        notes.append(
            "./client-setup exists but CLIENT_SETUP_DIR is not set, so /client-setup/ serves nothing; "
            "set CLIENT_SETUP_DIR=client-setup to serve its files (without authentication, as the original did)"
        )
    if "*" in settings.cors_origins:
        notes.append("CORS_ALLOWED_ORIGINS=*: any web page may call /v1 through this proxy with its users' browsers")
    return notes


def _domains_with_client_keys(directory: str) -> list[str]:
    try:
        entries = asyncio.run(FileCredentialStore(directory).list_all())
    except OSError:
        return []  # no credentials directory yet: nothing to guard
    return [entry.name for entry in entries if entry.credential is not None and entry.credential.client_api_key]
