"""The SQLAlchemy async engine on asyncpg."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nexus.adapters.persistence.pg_values import pg_json
from nexus.adapters.persistence.statement_log import watch_statements

log = logging.getLogger(__name__)

# libpq options asyncpg does not take as keyword arguments, mapped or dropped.
_SSLMODE_TO_ASYNCPG = {"disable": "disable", "allow": "allow", "prefer": "prefer", "require": "require",
                       "verify-ca": "verify-ca", "verify-full": "verify-full"}  # fmt: skip


def async_url(url: str) -> str:
    """``postgres://`` or ``postgresql://`` (libpq style) as SQLAlchemy's asyncpg URL.

    ``sslmode`` becomes asyncpg's ``ssl``; a ``host=/path`` query names a Unix socket directory
    (what the embedded server uses) and is kept.
    """
    parts = urlsplit(url)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "sslmode":
            query.append(("ssl", _SSLMODE_TO_ASYNCPG.get(value, value)))
        else:
            query.append((key, value))
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=urlencode(query)))


@asynccontextmanager
async def open_engine(
    url: str, *, pool_size: int = 10, slow_query_ms: int = 0, debug_sql: bool = False
) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # JSONB columns (headers, messages) on every recorded row: msgspec encodes them several
        # times faster than the standard library, which was half the store's Python-side cost;
        # what jsonb refuses (U+0000, lone surrogates) is replaced in this copy (pg_values).
        json_serializer=pg_json,
    )
    watch_statements(engine, slow_ms=slow_query_ms, log_all=debug_sql)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_optional_engine(
    url: str | None, *, enabled: bool, slow_query_ms: int = 0, debug_sql: bool = False
) -> AsyncIterator[AsyncEngine | None]:
    """The engine when storage is on (its URL resolved), else None."""
    if enabled and url is None:
        log.warning("Storage is on but no database URL was resolved: nothing is recorded")
    if not enabled or url is None:
        yield None
        return
    async with open_engine(url, slow_query_ms=slow_query_ms, debug_sql=debug_sql) as engine:
        yield engine
