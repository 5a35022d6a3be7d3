"""AI analyses of conversations: one job per (conversation, branch), claimed by workers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE conversation_analyses (
            id bigserial PRIMARY KEY,
            conversation_id uuid NOT NULL,
            branch_id text NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'processing', 'completed', 'failed')),
            custom_prompt text,
            attempts integer NOT NULL DEFAULT 0,
            error text,
            analysis jsonb,
            raw_answer text,
            model text,
            input_tokens integer,
            output_tokens integer,
            duration_ms integer,
            not_before timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz,
            UNIQUE (conversation_id, branch_id)
        )
        """
    )
    op.execute("CREATE INDEX conversation_analyses_due ON conversation_analyses (not_before) WHERE state = 'pending'")
    op.execute(
        "CREATE INDEX conversation_analyses_processing ON conversation_analyses (updated_at) WHERE state = 'processing'"
    )
    op.execute(
        "COMMENT ON TABLE conversation_analyses IS 'AI analysis jobs and results; workers claim pending rows with "
        "FOR UPDATE SKIP LOCKED, and a watchdog returns processing rows whose updated_at is too old'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE conversation_analyses")
