"""Usage per hour: the dashboard's totals, breakdowns and series without scanning ``exchanges``.

One row per UTC hour and (domain, account, model, request type); the store adds each batch's
newly inserted rows in its transaction (``hourly_rollup.add_to_rollup``), retention drops the
hours of the partitions it drops. ``nexus_rebuild_usage_hourly()`` recomputes the whole table
from ``exchanges``: the backfill below, and for rows written into ``exchanges`` by other means.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULLS NOT DISTINCT (PostgreSQL 15+): rows without a domain, account, model or type still
    # have one row per hour, and ON CONFLICT finds it.
    op.execute(
        """
        CREATE TABLE usage_hourly (
            hour timestamptz NOT NULL,
            domain text,
            account_id text,
            model text,
            request_type text,
            requests bigint NOT NULL DEFAULT 0,
            errors bigint NOT NULL DEFAULT 0,
            input_tokens bigint NOT NULL DEFAULT 0,
            output_tokens bigint NOT NULL DEFAULT 0,
            cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
            cache_read_input_tokens bigint NOT NULL DEFAULT 0,
            cost_usd numeric(20, 9) NOT NULL DEFAULT 0,
            unpriced_requests bigint NOT NULL DEFAULT 0,
            duration_ms_sum double precision NOT NULL DEFAULT 0,
            first_token_ms_sum double precision NOT NULL DEFAULT 0,
            first_token_count bigint NOT NULL DEFAULT 0,
            CONSTRAINT usage_hourly_key UNIQUE NULLS NOT DISTINCT (hour, domain, account_id, model, request_type)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE usage_hourly IS 'exchanges summed per UTC hour, domain, account, "
        "coalesce(model, model_requested) and request type'"
    )
    # The key leads with hour: it is the index of the period scans.
    op.execute("CREATE INDEX usage_hourly_domain_hour ON usage_hourly (domain, hour)")
    op.execute(
        """
        CREATE FUNCTION nexus_rebuild_usage_hourly() RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            written bigint;
        BEGIN
            -- Writers (the store adds to it in the transaction of its INSERT) wait until this
            -- commits; readers go on reading the rows of before.
            LOCK TABLE usage_hourly IN SHARE ROW EXCLUSIVE MODE;
            DELETE FROM usage_hourly;
            INSERT INTO usage_hourly (
                hour, domain, account_id, model, request_type, requests, errors, input_tokens, output_tokens,
                cache_creation_input_tokens, cache_read_input_tokens, cost_usd, unpriced_requests,
                duration_ms_sum, first_token_ms_sum, first_token_count
            )
            SELECT
                date_trunc('hour', ts, 'UTC'), domain, account_id, coalesce(model, model_requested), request_type,
                count(*),
                count(*) FILTER (WHERE status >= 400 OR state IN ('upstream_error', 'truncated')),
                coalesce(sum(input_tokens), 0),
                coalesce(sum(output_tokens), 0),
                coalesce(sum(cache_creation_input_tokens), 0),
                coalesce(sum(cache_read_input_tokens), 0),
                coalesce(sum(cost_usd), 0),
                count(*) FILTER (WHERE output_tokens IS NOT NULL AND cost_usd IS NULL),
                coalesce(sum(duration_ms), 0),
                coalesce(sum(first_token_ms), 0),
                count(first_token_ms)
            FROM exchanges
            GROUP BY 1, 2, 3, 4, 5;
            GET DIAGNOSTICS written = ROW_COUNT;
            RETURN written;
        END
        $$
        """
    )
    op.execute("SELECT nexus_rebuild_usage_hourly()")


def downgrade() -> None:
    op.execute("DROP FUNCTION nexus_rebuild_usage_hourly()")
    op.execute("DROP TABLE usage_hourly")
