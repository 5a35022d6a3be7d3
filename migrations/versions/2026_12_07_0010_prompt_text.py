"""The last user message's text on each exchange, for the dashboard's previews, transcript and search.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

A nullable column without a default: adding it to the partitioned table rewrites nothing.
Rows recorded before it stay NULL (their bodies are compressed parts; nothing is backfilled).
"""

from __future__ import annotations

from alembic import op

revision = "0010"

down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE exchanges ADD COLUMN prompt_text text")
    op.execute(
        "COMMENT ON COLUMN exchanges.prompt_text IS 'the last user message''s text (system reminders left out, "
        "white space collapsed, first 2000 characters), written at record time for /v1/messages calls'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE exchanges DROP COLUMN prompt_text")
