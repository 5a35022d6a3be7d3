"""Prompts rendered over MCP, by the hash of their text: a conversation whose first user text
has one of these hashes started from that prompt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE prompt_uses (
            text_hash text PRIMARY KEY,
            prompt_name text NOT NULL,
            first_at timestamptz NOT NULL,
            last_at timestamptz NOT NULL,
            count integer NOT NULL
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE prompt_uses IS 'prompts rendered by the MCP server (prompts/get), keyed by the sha256 "
        "of the rendered text without outer whitespace; holds no text'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE prompt_uses")
