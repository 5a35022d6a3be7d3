"""The ``conversations`` table: one summary row per conversation, recomputed from its requests."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def refresh_conversations(connection: AsyncConnection, conversation_ids: Collection[uuid.UUID]) -> None:
    """Recompute the summary rows of these conversations from their requests."""
    ids = list(conversation_ids)
    await connection.execute(text(_REFRESH), {"ids": ids})
    await connection.execute(
        text(
            "DELETE FROM conversations c WHERE c.conversation_id = ANY(:ids) AND NOT EXISTS"
            " (SELECT 1 FROM exchanges e WHERE e.conversation_id = c.conversation_id)"
        ),
        {"ids": ids},
    )


_REFRESH = """
INSERT INTO conversations AS c (
    conversation_id, domain, account_id, first_at, last_at, request_count, branch_count, subtask_count,
    compact_count, models, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
    cost_usd, latest_request_id, title, updated_at
)
SELECT
    conversation_id,
    (array_agg(domain ORDER BY ts, id))[1],
    (array_agg(account_id ORDER BY ts, id))[1],
    min(ts),
    max(ts),
    count(*),
    count(DISTINCT branch_id),
    count(DISTINCT branch_id) FILTER (WHERE branch_id LIKE 'subtask\\_%'),
    count(DISTINCT branch_id) FILTER (WHERE branch_id LIKE 'compact\\_%'),
    coalesce(array_agg(DISTINCT coalesce(model, model_requested))
             FILTER (WHERE coalesce(model, model_requested) IS NOT NULL), '{}'),
    coalesce(sum(input_tokens), 0),
    coalesce(sum(output_tokens), 0),
    coalesce(sum(cache_creation_input_tokens), 0),
    coalesce(sum(cache_read_input_tokens), 0),
    sum(cost_usd),
    (array_agg(id ORDER BY ts DESC, id DESC))[1],
    (array_agg(title ORDER BY ts, id))[1],
    now()
FROM exchanges
WHERE conversation_id = ANY(:ids)
GROUP BY conversation_id
ON CONFLICT (conversation_id) DO UPDATE SET
    domain = excluded.domain, account_id = excluded.account_id, first_at = excluded.first_at,
    last_at = excluded.last_at, request_count = excluded.request_count, branch_count = excluded.branch_count,
    subtask_count = excluded.subtask_count, compact_count = excluded.compact_count, models = excluded.models,
    input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
    cache_creation_input_tokens = excluded.cache_creation_input_tokens,
    cache_read_input_tokens = excluded.cache_read_input_tokens, cost_usd = excluded.cost_usd,
    latest_request_id = excluded.latest_request_id, title = excluded.title, updated_at = excluded.updated_at
"""
