"""Alerts before a limit: one row per alert key, claimed by the worker that sends it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE limit_alerts (
            key text PRIMARY KEY,
            measure text NOT NULL,
            account_id text NOT NULL,
            domain text,
            threshold integer,
            headline text NOT NULL,
            sent_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX limit_alerts_sent_at ON limit_alerts (sent_at)")
    op.execute(
        "COMMENT ON TABLE limit_alerts IS 'alerts before a limit: a worker sends an alert only if its "
        "INSERT ... ON CONFLICT claims the key (new, or quiet for the window''s length)'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE limit_alerts")
