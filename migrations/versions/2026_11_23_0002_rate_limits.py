"""Anthropic's latest unified rate-limit view of each account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE account_rate_limits (
            account_id text PRIMARY KEY,
            seen_at timestamptz NOT NULL,
            exchange_id uuid NOT NULL,
            domain text,
            status text,
            status_since timestamptz NOT NULL,
            reset_at timestamptz,
            representative_claim text,
            five_hour_status text,
            five_hour_utilization double precision,
            five_hour_reset_at timestamptz,
            seven_day_status text,
            seven_day_utilization double precision,
            seven_day_reset_at timestamptz,
            overage_status text,
            overage_disabled_reason text,
            headers jsonb NOT NULL
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE account_rate_limits IS "
        "'latest anthropic-ratelimit-unified-* response headers per account, by the time of the exchange'"
    )
    op.execute("COMMENT ON COLUMN account_rate_limits.status_since IS 'seen_at of the first snapshot with this status'")
    op.execute(
        "COMMENT ON COLUMN account_rate_limits.headers IS "
        "'every unified header as received, keyed by the name after anthropic-ratelimit-unified-'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE account_rate_limits")
