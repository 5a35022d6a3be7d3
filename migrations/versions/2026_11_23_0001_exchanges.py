"""Exchanges, partitioned by month, and content-addressed body parts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE exchanges (
            id uuid NOT NULL,
            ts timestamptz NOT NULL,
            upstream_request_id text,
            domain text,
            account_id text,
            method text NOT NULL,
            path text NOT NULL,
            query text,
            status integer NOT NULL,
            state text NOT NULL,
            error text,
            stream boolean NOT NULL DEFAULT false,
            request_type text,
            model_requested text,
            model text,
            user_agent text,
            session_id text,
            agent_id text,
            first_token_ms double precision,
            duration_ms double precision NOT NULL,
            input_tokens integer,
            output_tokens integer,
            cache_creation_input_tokens integer,
            cache_creation_5m_input_tokens integer,
            cache_creation_1h_input_tokens integer,
            cache_read_input_tokens integer,
            cost_usd numeric(20, 9),
            price_version text,
            tool_call_count integer NOT NULL DEFAULT 0,
            request_headers jsonb,
            response_headers jsonb,
            request_body bytea,
            request_body_size integer,
            response_body jsonb,
            response_raw bytea,
            response_raw_size integer,
            conversation_id uuid,
            branch_id text,
            parent_request_id uuid,
            is_subtask boolean NOT NULL DEFAULT false,
            parent_task_request_id uuid,
            PRIMARY KEY (ts, id)
        ) PARTITION BY RANGE (ts)
        """
    )
    op.execute("COMMENT ON COLUMN exchanges.request_body IS 'body_codec skeleton: parts live in body_parts'")
    op.execute(
        "COMMENT ON COLUMN exchanges.response_raw IS 'zlib-compressed response bytes as relayed (SSE for streams)'"
    )
    op.execute("CREATE INDEX exchanges_id ON exchanges (id)")
    op.execute("CREATE INDEX exchanges_account_ts ON exchanges (account_id, ts)")
    op.execute("CREATE INDEX exchanges_domain_ts ON exchanges (domain, ts)")
    op.execute("CREATE INDEX exchanges_conversation ON exchanges (conversation_id, ts)")
    op.execute("CREATE INDEX exchanges_session ON exchanges (session_id, ts)")
    op.execute(
        """
        CREATE TABLE body_parts (
            digest bytea PRIMARY KEY,
            data bytea NOT NULL,
            size integer NOT NULL,
            first_seen timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("COMMENT ON TABLE body_parts IS 'request body pieces stored once, by sha256, zlib-compressed'")
    op.execute(
        """
        CREATE FUNCTION nexus_ensure_exchange_partitions(first_month date, months integer) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            month_start date;
        BEGIN
            FOR i IN 0 .. months - 1 LOOP
                month_start := (date_trunc('month', first_month) + make_interval(months => i))::date;
                EXECUTE format(
                    'CREATE TABLE IF NOT EXISTS %I PARTITION OF exchanges FOR VALUES FROM (%L) TO (%L)',
                    'exchanges_' || to_char(month_start, 'YYYY_MM'),
                    (month_start::timestamp AT TIME ZONE 'UTC'),
                    ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC')
                );
            END LOOP;
        END
        $$
        """
    )
    op.execute("SELECT nexus_ensure_exchange_partitions((now() AT TIME ZONE 'UTC')::date - 31, 5)")


def downgrade() -> None:
    op.execute("DROP FUNCTION nexus_ensure_exchange_partitions(date, integer)")
    op.execute("DROP TABLE body_parts")
    op.execute("DROP TABLE exchanges")
