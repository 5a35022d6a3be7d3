"""SQLAlchemy Core tables, mirroring the alembic revisions (which own the schema)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, LargeBinary, MetaData, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("ts", DateTime(timezone=True), primary_key=True),
    Column("upstream_request_id", Text),
    Column("domain", Text),
    Column("account_id", Text),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("query", Text),
    Column("status", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("error", Text),
    Column("stream", Boolean, nullable=False),
    Column("request_type", Text),
    Column("model_requested", Text),
    Column("model", Text),
    Column("user_agent", Text),
    Column("session_id", Text),
    Column("agent_id", Text),
    Column("first_token_ms", Float),
    Column("duration_ms", Float, nullable=False),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cache_creation_input_tokens", Integer),
    Column("cache_creation_5m_input_tokens", Integer),
    Column("cache_creation_1h_input_tokens", Integer),
    Column("cache_read_input_tokens", Integer),
    Column("cost_usd", Numeric(20, 9)),
    Column("price_version", Text),
    Column("tool_call_count", Integer, nullable=False),
    Column("request_headers", JSONB),
    Column("response_headers", JSONB),
    Column("request_body", LargeBinary),
    Column("request_body_size", Integer),
    Column("response_body", JSONB(none_as_null=True)),
    Column("response_raw", LargeBinary),
    Column("response_raw_size", Integer),
    Column("conversation_id", UUID(as_uuid=True)),
    Column("branch_id", Text),
    Column("parent_request_id", UUID(as_uuid=True)),
    Column("is_subtask", Boolean, nullable=False),
    Column("parent_task_request_id", UUID(as_uuid=True)),
)

body_parts = Table(
    "body_parts",
    metadata,
    Column("digest", LargeBinary, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
)

account_rate_limits = Table(
    "account_rate_limits",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("exchange_id", UUID(as_uuid=True), nullable=False),
    Column("domain", Text),
    Column("status", Text),
    Column("status_since", DateTime(timezone=True), nullable=False),
    Column("reset_at", DateTime(timezone=True)),
    Column("representative_claim", Text),
    Column("five_hour_status", Text),
    Column("five_hour_utilization", Float),
    Column("five_hour_reset_at", DateTime(timezone=True)),
    Column("seven_day_status", Text),
    Column("seven_day_utilization", Float),
    Column("seven_day_reset_at", DateTime(timezone=True)),
    Column("overage_status", Text),
    Column("overage_disabled_reason", Text),
    Column("headers", JSONB, nullable=False),
)
