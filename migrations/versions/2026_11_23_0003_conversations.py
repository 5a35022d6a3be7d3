"""Conversation threading: link facts and links on exchanges, a queue, a conversation summary.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FACT_COLUMNS = (
    ("message_hash", "text"),
    ("parent_message_hash", "text"),
    ("grandparent_message_hash", "text"),
    ("system_hash", "text"),
    ("message_count", "integer"),
    ("prompt_key", "text"),
    ("summarises", "boolean NOT NULL DEFAULT false"),
    ("continuation_key", "text"),
    ("agent_calls", "jsonb"),
    ("title", "text"),
    ("facts_version", "smallint"),
    ("spawn_tool_use_id", "text"),
    ("link_method", "text"),
    ("linked_at", "timestamptz"),
    ("link_pending", "boolean NOT NULL DEFAULT false"),
)


def upgrade() -> None:
    op.execute("ALTER TABLE exchanges " + ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in _FACT_COLUMNS))
    # Inference rows recorded before this revision have no facts yet: the linker computes them
    # from the stored bodies when it takes them off the queue.
    op.execute("UPDATE exchanges SET link_pending = true WHERE request_type = 'inference'")
    for statement in (
        "CREATE INDEX exchanges_link_queue ON exchanges (ts, id) WHERE link_pending",
        # Whether a domain has linked rows after a given one (a late arrival): asked for every
        # new row, and during a backlog most of the domain's later rows are not linked yet.
        "CREATE INDEX exchanges_linked ON exchanges (domain, ts, id) WHERE conversation_id IS NOT NULL"
        " AND NOT link_pending",
        "CREATE INDEX exchanges_message_hash ON exchanges (domain, message_hash, ts) WHERE message_hash IS NOT NULL",
        "CREATE INDEX exchanges_parent_hash ON exchanges (domain, parent_message_hash)"
        " WHERE parent_message_hash IS NOT NULL",
        "CREATE INDEX exchanges_grandparent_hash ON exchanges (domain, grandparent_message_hash)"
        " WHERE grandparent_message_hash IS NOT NULL",
        "CREATE INDEX exchanges_prompt_key ON exchanges (domain, prompt_key) WHERE prompt_key IS NOT NULL",
        "CREATE INDEX exchanges_agent_calls ON exchanges USING gin (agent_calls jsonb_path_ops)"
        " WHERE agent_calls IS NOT NULL",
        "CREATE INDEX exchanges_summarisers ON exchanges (domain, ts) WHERE summarises",
        "CREATE INDEX exchanges_parent_request ON exchanges (parent_request_id) WHERE parent_request_id IS NOT NULL",
    ):
        op.execute(statement)
    op.execute(
        """
        CREATE TABLE conversations (
            conversation_id uuid PRIMARY KEY,
            domain text,
            account_id text,
            first_at timestamptz NOT NULL,
            last_at timestamptz NOT NULL,
            request_count integer NOT NULL,
            branch_count integer NOT NULL,
            subtask_count integer NOT NULL,
            compact_count integer NOT NULL,
            models text[] NOT NULL,
            input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            cache_creation_input_tokens bigint NOT NULL,
            cache_read_input_tokens bigint NOT NULL,
            cost_usd numeric(20, 9),
            latest_request_id uuid NOT NULL,
            title text,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("COMMENT ON TABLE conversations IS 'one row per conversation, refreshed by the linker from exchanges'")
    op.execute("CREATE INDEX conversations_last_at ON conversations (last_at DESC)")
    op.execute("CREATE INDEX conversations_domain_last_at ON conversations (domain, last_at DESC)")
    op.execute("CREATE INDEX conversations_account_last_at ON conversations (account_id, last_at DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE conversations")
    for index in (
        "exchanges_link_queue",
        "exchanges_linked",
        "exchanges_message_hash",
        "exchanges_parent_hash",
        "exchanges_grandparent_hash",
        "exchanges_prompt_key",
        "exchanges_agent_calls",
        "exchanges_summarisers",
        "exchanges_parent_request",
    ):
        op.execute(f"DROP INDEX {index}")
    op.execute("ALTER TABLE exchanges " + ", ".join(f"DROP COLUMN {name}" for name, _ in _FACT_COLUMNS))
