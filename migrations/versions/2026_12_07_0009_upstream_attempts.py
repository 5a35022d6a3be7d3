"""The upstream attempts of an exchange that did not become its answer (retries, failovers).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: no partition is rewritten.
    op.execute("ALTER TABLE exchanges ADD COLUMN upstream_attempts jsonb")
    op.execute(
        "COMMENT ON COLUMN exchanges.upstream_attempts IS 'attempts before the answer: number, status (null: no "
        "answer), reason, wait_s, account_id (pools), circuit state; null when the first attempt answered'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE exchanges DROP COLUMN upstream_attempts")
