"""What each worker admitted, shared so the traffic limits hold across workers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE traffic_shares (
            worker text NOT NULL,
            scope text NOT NULL,
            requests integer NOT NULL,
            tokens bigint NOT NULL,
            streams integer NOT NULL,
            day integer NOT NULL,
            cost numeric NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (worker, scope)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE traffic_shares IS 'each worker''s counts per traffic-limit scope (last minute, in flight, "
        "the day''s cost), published every RATE_LIMIT_SYNC_MS; rows of workers gone for two days are deleted'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE traffic_shares")
