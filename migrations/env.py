"""Alembic environment: runs on the connection the application hands over (see
``nexus.adapters.persistence.migrate``), inside its transaction and advisory lock."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `claude-nexus-proxy migrate` (it opens the connection and the lock)")

context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
