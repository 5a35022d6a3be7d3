"""The dashboard over a large recording: how fast each page answers, and whether any grows.

Starts its own embedded PostgreSQL (data in a temporary directory, or ``--workdir``), migrates
it and seeds ``--requests`` stored requests (100,000 by default):

* the bulk in SQL (``INSERT ... SELECT`` over ``generate_series``), as the recorder and the
  linker would have left them: 5 domains, 8 accounts, 4 models, the last 30 days with a
  quarter of the traffic in the last 24 h, streams, errors (~3 %), tokens and costs, and
  already linked: conversations of 20-40 requests (``main``, a sub-agent ``subtask_N`` of three
  requests after every 12th, some ``branch_...`` and ``compact_...`` tails, parent chains),
  ~8 % side calls (``quota``, ``query_evaluation``) outside conversations, and one
  conversation of 2 % of all requests (the biggest, to see whether its page is bounded);
* ~200 real Claude Code-shaped requests with bodies and tool calls (``linker_load.traffic``)
  through ``build_row`` + ``SqlAlchemyExchangeStore`` and linked by ``link_pending``, so
  that request pages have bodies to render;
* every conversation's summary row (``refresh_conversations``) and the hourly usage rollup
  (``nexus_rebuild_usage_hourly()``: the bulk bypasses the store that keeps it), then
  ``VACUUM ANALYZE`` and a checkpoint.

Then it serves the dashboard on that database (``python -m nexus --role dashboard``), signs
in as a browser does and times every page: 3 warm-up requests, then ``--samples`` sequential
ones each (p50/p95/max, bytes, table rows), and one more with every statement logged by the
server (how many, their time in PostgreSQL). A page answering 404 is reported as missing.

With ``--small`` (10,000 by default; 0 skips it) the pages are first measured with that many
requests stored, then the rest is added (the biggest conversation grows too) and they are
measured again: a page whose longest table or list grows past a page of 50 rows, or whose
bytes triple, is flagged, and so is any page with a table or list longer than 50 rows.

    .venv/bin/python bench/dashboard_load.py [--requests 100000] [--small 10000] [--samples 20]
        [--explain-ms 100]   # plans of the dashboard's statements slower than that, to stderr

The dashboard and the embedded server are stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import asyncpg
import httpx
import linker_load
import msgspec
import pg
import report
import upstreams
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.conversation_summaries import refresh_conversations
from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.embedded import start_embedded_postgres
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.hourly_rollup import rebuild_rollup
from nexus.adapters.persistence.linking import sql_link_work
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.exchange import Exchange
from nexus.application.linking.run import link_pending
from nexus.application.recording.row import build_row

DOMAINS = ("acme.example.com", "team.example.org", "research.example.net", "ops.example.io", "home.example.dev")
ACCOUNTS = tuple(f"acc_{name}" for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"))
# Each domain's accounts: the first three domains have two (the second shared with no other).
DOMAIN_ACCOUNTS = {d: tuple(ACCOUNTS[n] for n in (i, i + 5) if n < len(ACCOUNTS)) for i, d in enumerate(DOMAINS)}
# (requested, answered, $ per MTok in, out, weight)
MODELS = (
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 3.0, 15.0, 45),
    ("claude-opus-4-5", "claude-opus-4-5-20251101", 5.0, 25.0, 25),
    ("claude-sonnet-4-6", "claude-sonnet-4-6", 3.0, 15.0, 20),
    ("claude-haiku-4-5", "claude-haiku-4-5-20251001", 1.0, 5.0, 10),
)
RECENT_SHARE = 0.25  # of the conversations, ending in the last 24 h
DAYS = 30
BIG_SHARE = 0.02  # the biggest conversation's share of all requests
SIDE_CALLS = 0.08  # quota and query_evaluation requests per conversation request
LIST_LIMIT = 50
TABLE_ROW = re.compile(r"<tr[\s>]")
LIST_ITEM = re.compile(r"<li[\s>]")
SEARCH_WORD = "timeout"
TITLE_WORDS = ("router", "parser", "migration", "cache", "retry", "schema", "deploy", "tokenizer", "index", "auth")


# --- the bulk, in SQL ------------------------------------------------------------------------


class Conversation(NamedTuple):
    k: int
    size: int
    side_calls: int
    start: datetime
    step_s: float
    domain: str
    account: str
    model_requested: str
    model: str
    price_in: float
    price_out: float
    session: str
    title: str


class Segment(NamedTuple):
    """Requests ``first`` to ``end - 1`` of a conversation, with its side calls or not."""

    conversation: Conversation
    first: int
    end: int
    side_calls: bool

    @property
    def rows(self) -> int:
        return self.end - self.first + (self.conversation.side_calls if self.side_calls else 0)


def conversations(total: int, big: int, now: datetime, seed: int) -> list[Conversation]:
    """Conversations holding ``total`` requests and side calls: the first one has ``big``
    requests over the last 10 days, the others 20-40 (a quarter of them ending in the last 24 h)."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic data, reproducible
    made: list[Conversation] = []
    count = 0
    while count < total:
        k = len(made)
        size = big if k == 0 else rng.randint(20, 40)
        side = 0 if k == 0 else max(1, round(size * SIDE_CALLS))
        step = 10 * 86400 / size if k == 0 else rng.uniform(20, 90)
        span = size * step + 10
        if k == 0:
            end = now - timedelta(minutes=30)
        elif rng.random() < RECENT_SHARE:
            end = now - timedelta(seconds=rng.uniform(60, 86400))
        else:
            end = now - timedelta(seconds=rng.uniform(86400, DAYS * 86400 - span))
        domain = DOMAINS[min(len(DOMAINS) - 1, int(rng.paretovariate(1.2)) - 1)]
        account = rng.choice(DOMAIN_ACCOUNTS[domain])
        requested, answered, price_in, price_out, _ = rng.choices(MODELS, weights=[m[4] for m in MODELS])[0]
        words = rng.sample(TITLE_WORDS, 2)
        title = f"Fix the {words[0]} bug in the {words[1]} module ({k})"
        made.append(Conversation(k, size, side, end - timedelta(seconds=span), step, domain, account, requested,
                                 answered, price_in, price_out, str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                 title))  # fmt: skip
        count += size + side
    return made


def segments(made: list[Conversation], targets: list[int]) -> list[list[Segment]]:
    """The rows of each stage: stage ``i`` brings the total to ``targets[i]`` exactly. The
    biggest conversation grows with every stage (its share of each), the others are added whole
    (but for one cut at the end of a stage, continued in the next)."""
    big = made[0]
    stages: list[list[Segment]] = []
    big_done, stored = 0, 0
    queue: Iterator[Segment] = iter(Segment(c, 0, c.size, True) for c in made[1:])
    carry: Segment | None = None
    for target in targets:
        big_end = big.size if target == targets[-1] else min(big.size, round(target * BIG_SHARE))
        stage = [Segment(big, big_done, big_end, False)] if big_end > big_done else []
        stored += big_end - big_done
        big_done = big_end
        while stored < target:
            segment = carry or next(queue, None)
            carry = None
            if segment is None:
                break
            room = target - stored
            if segment.rows > room and segment.end == segment.first:
                continue  # only side calls left, too many: left out, the next conversation fills the room
            if segment.rows > room:
                # The side calls go with the conversation's last part.
                cut = segment.first + min(room, segment.end - segment.first)
                head = Segment(segment.conversation, segment.first, cut, False)
                carry = Segment(segment.conversation, cut, segment.end, segment.side_calls)
                segment = head
            stage.append(segment)
            stored += segment.rows
        stages.append(stage)
    return stages


_CONVERSATION_COLUMNS = """
    unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::timestamptz[], $7::float8[], $8::text[],
           $9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[], $14::text[], $15::text[])
    AS c(k, first, last, size, side_calls, start_at, step_s, domain, account, model_requested, model, price_in,
         price_out, session, title)
"""

_INSERT = """
INSERT INTO exchanges (
    id, ts, upstream_request_id, domain, account_id, method, path, query, status, state, error, stream,
    request_type, model_requested, model, user_agent, session_id, agent_id, first_token_ms, duration_ms,
    input_tokens, output_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens,
    cache_creation_1h_input_tokens, cache_read_input_tokens, cost_usd, price_version, tool_call_count,
    request_headers, response_headers, request_body_size, response_body, response_raw_size,
    conversation_id, branch_id, parent_request_id, is_subtask, parent_task_request_id, message_count,
    summarises, agent_calls, title, facts_version, spawn_tool_use_id, link_method, linked_at, link_pending
)
"""

# Headers as Claude Code sends them and Anthropic answers (about 1 KB each way, as stored).
_CLAUDE_CODE_HEADERS = json.dumps(
    [
        ["host", "127.0.0.1:3000"], ["connection", "keep-alive"], ["accept", "application/json"],
        ["x-stainless-retry-count", "0"], ["x-stainless-timeout", "600"], ["x-stainless-lang", "js"],
        ["x-stainless-package-version", "0.60.0"], ["x-stainless-os", "Linux"], ["x-stainless-arch", "x64"],
        ["x-stainless-runtime", "node"], ["x-stainless-runtime-version", "v22.17.0"],
        ["anthropic-dangerous-direct-browser-access", "true"], ["anthropic-version", "2023-06-01"],
        ["authorization", "Bearer sk-ant-oat01-****************"], ["x-app", "cli"],
        ["user-agent", "claude-cli/2.1.330 (external, cli)"], ["content-type", "application/json"],
        ["anthropic-beta", "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"],
        ["accept-language", "*"], ["sec-fetch-mode", "cors"], ["accept-encoding", "gzip, deflate"],
    ]
)  # fmt: skip
_ANTHROPIC_HEADERS = json.dumps(
    [
        ["date", "Mon, 23 Nov 2026 10:00:00 GMT"], ["transfer-encoding", "chunked"], ["connection", "keep-alive"],
        ["cache-control", "no-cache"], ["anthropic-ratelimit-unified-status", "allowed"],
        ["anthropic-ratelimit-unified-5h-status", "allowed"], ["anthropic-ratelimit-unified-5h-reset", "1795428000"],
        ["anthropic-ratelimit-unified-5h-utilization", "0.42"], ["anthropic-ratelimit-unified-7d-status", "allowed"],
        ["anthropic-ratelimit-unified-7d-reset", "1795860000"], ["anthropic-ratelimit-unified-7d-utilization", "0.17"],
        ["anthropic-ratelimit-unified-representative-claim", "five_hour"],
        ["anthropic-ratelimit-unified-fallback-percentage", "0.5"], ["anthropic-ratelimit-unified-reset", "1795428000"],
        ["anthropic-organization-id", "00000000-0000-4000-8000-000000000000"],
        ["strict-transport-security", "max-age=31536000; includeSubDomains; preload"], ["via", "1.1 google"],
        ["cf-cache-status", "DYNAMIC"], ["x-robots-tag", "none"], ["server", "cloudflare"],
        ["cf-ray", "98a1b2c3d4e5f607-FRA"],
    ]
)  # fmt: skip
_REQUEST_HEADERS = f"""'{_CLAUDE_CODE_HEADERS}'::jsonb
    || jsonb_build_array(jsonb_build_array('x-claude-code-session-id', c.session))"""


def _response_headers(content_type: str, request_id: str) -> str:
    return f"""'{_ANTHROPIC_HEADERS}'::jsonb || jsonb_build_array(
        jsonb_build_array('content-type', {content_type}), jsonb_build_array('request-id', {request_id}))"""


# One row per conversation request: its place in the tree (every 12th request launches a
# sub-agent of three requests, positions 5-7), outcome (``e``: ~3 % upstream errors, 0.5 %
# cancelled), tokens and cost.
_CONVERSATION_ROWS = (
    _INSERT
    + f"""
SELECT
    md5('dash:' || c.k || ':' || j)::uuid,
    ts,
    'req_' || substr(md5('u' || c.k || ':' || j), 1, 24),
    c.domain, c.account, 'POST', '/v1/messages', 'beta=true',
    o.status, o.state, o.error, h % 100 < 85, 'inference',
    CASE WHEN sub THEN 'claude-haiku-4-5' ELSE c.model_requested END,
    CASE WHEN o.state = 'upstream_error' THEN NULL WHEN sub THEN 'claude-haiku-4-5-20251001' ELSE c.model END,
    'claude-cli/2.1.330 (external, cli)', c.session,
    CASE WHEN sub THEN 'a' || substr(md5('agent' || c.k || ':' || block), 1, 16) END,
    CASE WHEN h % 100 < 85 AND o.state <> 'upstream_error' THEN 300 + h % 1700 END,
    CASE WHEN o.state = 'upstream_error' THEN 200 + h % 800 ELSE 1500 + h % 45000 END,
    t.input, t.output, t.cache_write, t.cache_write, CASE WHEN t.cache_write IS NOT NULL THEN 0 END, t.cache_read,
    round((((t.input + t.cache_write * 1.25 + t.cache_read * 0.1) * t.price_in + t.output * t.price_out)
           / 1e6)::numeric, 9),
    CASE WHEN t.output IS NOT NULL THEN '2026-08-21' END,
    CASE WHEN o.state = 'upstream_error' THEN 0 WHEN p = 4 THEN 1 ELSE h % 3 END,
    {_REQUEST_HEADERS},
    {
        _response_headers(
            "CASE WHEN h % 100 < 85 THEN 'text/event-stream' ELSE 'application/json' END",
            "'req_' || substr(md5('u' || c.k || ':' || j), 1, 24)",
        )
    },
    CASE WHEN sub THEN 4000 + p * 1500 ELSE 18000 + least(j, 400) * 2500 END,
    CASE WHEN o.state = 'upstream_error'
        THEN jsonb_build_object('type', 'error', 'error', jsonb_build_object('type', o.kind, 'message', o.error))
        ELSE jsonb_build_object(
            'id', 'msg_' || substr(md5('m' || c.k || ':' || j), 1, 24), 'type', 'message', 'role', 'assistant',
            'model', CASE WHEN sub THEN 'claude-haiku-4-5-20251001' ELSE c.model END,
            'content', jsonb_build_array(jsonb_build_object('type', 'text', 'text',
                'Step ' || j || ' of ' || c.title || ': ' || repeat('the ' || w.a || ' now handles the ' || w.b
                || ' case, the tests pass and nothing else changed. ', 4 + h % 8))),
            'stop_reason', CASE WHEN h % 3 = 0 THEN 'end_turn' ELSE 'tool_use' END, 'stop_sequence', NULL,
            'usage', jsonb_build_object('input_tokens', t.input, 'output_tokens', t.output,
                'cache_creation_input_tokens', t.cache_write, 'cache_read_input_tokens', t.cache_read))
    END,
    800 + h % 3000,
    md5('dash:' || c.k || ':0')::uuid,
    CASE WHEN sub THEN 'subtask_' || block
         WHEN tail = 'branch' THEN 'branch_' || to_char(
             (c.start_at + make_interval(secs => (c.size - 3) * c.step_s)) AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS')
         WHEN tail = 'compact' THEN 'compact_' || to_char(
             (c.start_at + make_interval(secs => (c.size - 4) * c.step_s)) AT TIME ZONE 'UTC', 'HH24MISS')
         ELSE 'main' END,
    CASE WHEN j = 0 THEN NULL
         WHEN p = 8 THEN md5('dash:' || c.k || ':' || (j - 4))::uuid
         WHEN tail = 'branch' AND j = c.size - 3 AND p NOT BETWEEN 5 AND 7
             THEN md5('dash:' || c.k || ':' || (j - 2))::uuid
         ELSE md5('dash:' || c.k || ':' || (j - 1))::uuid END,
    sub,
    CASE WHEN sub THEN md5('dash:' || c.k || ':' || (j - p + 4))::uuid END,
    CASE WHEN sub THEN (p - 5) * 2 + 1 ELSE j * 2 + 1 END,
    coalesce(tail = 'compact' AND j = c.size - 4, false),
    CASE WHEN p = 4 THEN jsonb_build_array(jsonb_build_object(
        'id', 'toolu_01' || substr(md5('t' || c.k || ':' || block), 1, 22), 'name', 'Agent', 'position', 1,
        'prompt_key', md5('prompt' || c.k || ':' || block), 'description', 'Find every caller of the ' || w.a)) END,
    CASE WHEN sub THEN 'Find every caller of the ' || w.a ELSE c.title END,
    NULL,
    CASE WHEN sub THEN 'toolu_01' || substr(md5('t' || c.k || ':' || (j / 12 + 1)), 1, 22) END,
    CASE WHEN j = 0 THEN 'new' WHEN p = 5 THEN 'subagent' WHEN tail = 'compact' AND j = c.size - 4 THEN 'compact'
         ELSE 'chain' END,
    ts + interval '1 second',
    false
FROM {_CONVERSATION_COLUMNS}
CROSS JOIN LATERAL generate_series(c.first, c.last - 1) AS j
CROSS JOIN LATERAL (SELECT
    abs(hashtext(c.k || ':' || j)) AS h, j % 12 AS p, j / 12 + 1 AS block, j % 12 BETWEEN 5 AND 7 AS sub,
    c.start_at + make_interval(secs => j * c.step_s + abs(hashtext('s' || c.k || ':' || j)) % 7) AS ts,
    CASE WHEN c.k % 6 = 1 AND j >= c.size - 3 THEN 'branch'
         WHEN c.k % 9 = 4 AND j >= c.size - 4 THEN 'compact' END AS tail) AS r
CROSS JOIN LATERAL (SELECT
    (ARRAY{list(TITLE_WORDS)!r})[1 + h % {len(TITLE_WORDS)}] AS a,
    (ARRAY['empty', 'unicode', 'timeout', 'retry', 'nested', 'trailing slash'])[1 + (h / 10) % 6] AS b) AS w
CROSS JOIN LATERAL (SELECT
    CASE WHEN h % 1000 < 15 THEN 529 WHEN h % 1000 < 22 THEN 500 WHEN h % 1000 < 27 THEN 429 ELSE 200 END AS status,
    CASE WHEN h % 1000 < 27 THEN 'upstream_error' WHEN h % 1000 < 32 THEN 'client_cancelled'
         ELSE 'complete' END AS state,
    CASE WHEN h % 1000 < 15 THEN 'Overloaded' WHEN h % 1000 < 22 THEN 'Internal server error (upstream timeout)'
         WHEN h % 1000 < 27 THEN 'Number of request tokens has exceeded your per-minute rate limit'
         WHEN h % 1000 < 32 THEN 'client disconnected' END AS error,
    CASE WHEN h % 1000 < 15 THEN 'overloaded_error' WHEN h % 1000 < 22 THEN 'api_error'
         ELSE 'rate_limit_error' END AS kind) AS o
CROSS JOIN LATERAL (SELECT
    CASE WHEN o.state <> 'upstream_error' THEN 3 + h % 40 END AS input,
    CASE WHEN o.state <> 'upstream_error' THEN 40 + (h / 7) % 1800 END AS output,
    CASE WHEN o.state <> 'upstream_error' THEN (h / 13) % 4000 END AS cache_write,
    CASE WHEN o.state = 'upstream_error' THEN NULL WHEN sub THEN 6000 + p * 1500
         ELSE 15000 + least(j, 150) * 900 END AS cache_read,
    CASE WHEN sub THEN 1.0 ELSE c.price_in END AS price_in,
    CASE WHEN sub THEN 5.0 ELSE c.price_out END AS price_out) AS t
"""  # noqa: S608 -- constants
)

# Side calls of a conversation's session: title generation and quota probes, not linked.
_SIDE_ROWS = (
    _INSERT
    + f"""
SELECT
    md5('dash:' || c.k || ':x' || i)::uuid,
    c.start_at + make_interval(secs => (i + 0.5) * c.size * c.step_s / c.side_calls),
    'req_' || substr(md5('x' || c.k || ':' || i), 1, 24),
    c.domain, c.account, 'POST', '/v1/messages', 'beta=true', 200, 'complete', NULL, false,
    CASE WHEN i % 3 = 0 THEN 'quota' ELSE 'query_evaluation' END,
    'claude-haiku-4-5', 'claude-haiku-4-5-20251001', 'claude-cli/2.1.330 (external, cli)', c.session, NULL,
    NULL, 300 + h % 1200,
    100 + h % 300, 1 + h % 30, 0, 0, 0, 0, round(((100 + h % 300) * 1.0 + (1 + h % 30) * 5.0) / 1e6, 9),
    '2026-08-21', 0, {_REQUEST_HEADERS},
    {_response_headers("'application/json'", "'req_' || substr(md5('x' || c.k || ':' || i), 1, 24)")},
    600 + h % 900,
    jsonb_build_object('id', 'msg_' || substr(md5('xm' || c.k || ':' || i), 1, 24), 'type', 'message',
        'role', 'assistant', 'model', 'claude-haiku-4-5-20251001',
        'content', jsonb_build_array(jsonb_build_object('type', 'text', 'text',
            CASE WHEN i % 3 = 0 THEN 'ok' ELSE '{{"title": "' || c.title || '"}}' END)),
        'stop_reason', 'end_turn', 'stop_sequence', NULL,
        'usage', jsonb_build_object('input_tokens', 100 + h % 300, 'output_tokens', 1 + h % 30)),
    300,
    NULL, NULL, NULL, false, NULL, 1, false, NULL, NULL, NULL, NULL, NULL, NULL, false
FROM {_CONVERSATION_COLUMNS}
CROSS JOIN LATERAL generate_series(0, c.side_calls - 1) AS i
CROSS JOIN LATERAL (SELECT abs(hashtext('x' || c.k || ':' || i)) AS h) AS r
"""  # noqa: S608 -- constants
)

_RATE_LIMITS = """
INSERT INTO account_rate_limits (
    account_id, seen_at, exchange_id, domain, status, status_since, reset_at, representative_claim,
    five_hour_status, five_hour_utilization, five_hour_reset_at, seven_day_status, seven_day_utilization,
    seven_day_reset_at, overage_status, overage_disabled_reason, headers
)
SELECT a, now() - interval '2 minutes', md5(a)::uuid, NULL, 'allowed', now() - interval '3 days',
       now() + interval '2 hours', 'five_hour', 'allowed', 0.1 * n, now() + interval '2 hours',
       CASE WHEN n = 8 THEN 'allowed_warning' ELSE 'allowed' END, 0.11 * n, now() + interval '4 days',
       'rejected', 'org_level_disabled', jsonb_build_object('status', 'allowed', '5h-utilization', 0.1 * n)
FROM unnest($1::text[]) WITH ORDINALITY AS x(a, n)
ON CONFLICT (account_id) DO NOTHING
"""


def _arrays(stage: list[Segment], *, side_calls: bool) -> list[list[Any]]:
    chosen = [s for s in stage if s.side_calls] if side_calls else [s for s in stage if s.end > s.first]
    columns: list[list[Any]] = [[] for _ in range(15)]
    for s in chosen:
        c = s.conversation
        values = (c.k, s.first, s.end, c.size, c.side_calls, c.start, c.step_s, c.domain, c.account,
                  c.model_requested, c.model, c.price_in, c.price_out, c.session, c.title)  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


async def seed_bulk(url: str, stage: list[Segment]) -> dict[str, float]:
    """The stage's rows in SQL, in chunks of conversations (one statement each)."""
    connection = await asyncpg.connect(url)
    timings = {"insert_s": 0.0}
    try:
        began = time.perf_counter()
        for start in range(0, len(stage), 500):
            chunk = stage[start : start + 500]
            async with connection.transaction():
                await connection.execute(_CONVERSATION_ROWS, *_arrays(chunk, side_calls=False))
                if any(s.side_calls for s in chunk):
                    await connection.execute(_SIDE_ROWS, *_arrays(chunk, side_calls=True))
        await connection.execute(_RATE_LIMITS, list(ACCOUNTS))
        timings["insert_s"] = time.perf_counter() - began
    finally:
        await connection.close()
    return timings


async def refresh_summaries(engine: AsyncEngine, ids: list[uuid.UUID]) -> None:
    for start in range(0, len(ids), 500):
        async with engine.begin() as connection:
            await refresh_conversations(connection, ids[start : start + 500])


def _conversation_id(k: int) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"dash:{k}:0".encode()).hexdigest())  # noqa: S324 -- as the SQL does


# --- real rows, with bodies ------------------------------------------------------------------


async def seed_rich(engine: AsyncEngine, exchanges: list[Exchange]) -> int:
    """Claude Code-shaped exchanges with bodies, stored and linked as the proxy does."""
    store = SqlAlchemyExchangeStore(engine)
    known: dict[bytes, None] = {}
    sessions: dict[str, int] = {}
    for start in range(0, len(exchanges), 100):
        rows = []
        for exchange in exchanges[start : start + 100]:
            session = next(v.decode() for k, v in exchange.request_headers if k == b"x-claude-code-session-id")
            index = sessions.setdefault(session, len(sessions))
            domain = DOMAINS[index % len(DOMAINS)]
            placed = msgspec.structs.replace(exchange, domain=domain, account_id=DOMAIN_ACCOUNTS[domain][0])
            rows.append(build_row(placed, store_bodies=True, known_parts=known))
        await store.store(rows)
        known.update(dict.fromkeys(part.digest for row in rows for part in row.parts))
    await link_pending(lambda: sql_link_work(engine))
    return len(exchanges)


# --- the stages ------------------------------------------------------------------------------


async def seed_stage(url: str, stage: list[Segment], rich: list[Exchange]) -> dict[str, Any]:
    began = time.perf_counter()
    timings = await seed_bulk(url, stage)
    async with open_engine(url) as engine:
        rich_rows = 0
        if rich:
            t0 = time.perf_counter()
            rich_rows = await seed_rich(engine, rich)
            timings["rich_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = sorted({_conversation_id(s.conversation.k) for s in stage if s.end > s.first}, key=str)
        await refresh_summaries(engine, ids)
        timings["summaries_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with engine.begin() as connection:
            await rebuild_rollup(connection)  # the bulk went into exchanges in SQL, past the store
        timings["rollup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with engine.connect() as connected:
            connection = await connected.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
            await connection.execute(text("CHECKPOINT"))  # not in the middle of the timed requests
            timings["analyze_s"] = time.perf_counter() - t0
            counts = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM exchanges), (SELECT count(*) FROM conversations),"
                        " (SELECT count(*) FROM exchanges WHERE ts >= now() - interval '24 hours'),"
                        " (SELECT count(*) FROM exchanges WHERE link_pending), (SELECT count(*) FROM usage_hourly)"
                    )
                )
            ).one()
    return {
        "requests": counts[0], "conversations": counts[1], "last_24h": counts[2], "link_pending": counts[3],
        "rollup_rows": counts[4], "rich_rows": rich_rows, "seconds": round(time.perf_counter() - began, 1),
        **{key: round(value, 1) for key, value in timings.items()},
    }  # fmt: skip


async def targets(url: str) -> dict[str, Any]:
    """What the pages are opened on: a rich request, the biggest conversation, a domain."""
    connection = await asyncpg.connect(url)
    try:
        rich = await connection.fetchval(
            "SELECT id::text FROM exchanges WHERE request_body IS NOT NULL AND tool_call_count > 0"
            " ORDER BY request_body_size DESC, id LIMIT 1"
        )
        requests = await connection.fetchval("SELECT count(*) FROM exchanges")
        biggest = await connection.fetchrow(
            "SELECT conversation_id::text, request_count FROM conversations"
            " ORDER BY request_count DESC, conversation_id LIMIT 1"
        )
    finally:
        await connection.close()
    return {"request": rich, "conversation": biggest[0], "conversation_requests": biggest[1], "domain": DOMAINS[1],
            "requests": requests}  # fmt: skip


def pages(ids: dict[str, Any], now: datetime) -> list[tuple[str, str]]:
    since = quote((now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    deep = ids["requests"] // 5 // LIST_LIMIT * LIST_LIMIT  # a fifth of the way down
    return [
        ("overview (24h)", "/dashboard/"),
        ("overview 30d", "/dashboard/?period=30d"),
        ("overview one domain", f"/dashboard/?domain={ids['domain']}"),
        ("requests", "/dashboard/requests"),
        ("requests filtered", f"/dashboard/requests?domain={ids['domain']}&state=upstream_error"),
        ("requests q= 24h", f"/dashboard/requests?q={SEARCH_WORD}&since={since}"),
        ("requests q= all", f"/dashboard/requests?q={SEARCH_WORD}"),
        ("requests deep page", f"/dashboard/requests?offset={deep}"),
        ("request detail", f"/dashboard/requests/{ids['request']}"),
        ("conversations", "/dashboard/conversations"),
        ("conversations search", "/dashboard/conversations?q=router"),
        ("conversation biggest", f"/dashboard/conversations/{ids['conversation']}"),
        ("usage", "/dashboard/usage"),
        ("live", "/dashboard/live"),
    ]


# --- the dashboard ---------------------------------------------------------------------------


def start_dashboard(workdir: Path, url: str, key: str) -> upstreams.Service:
    home = workdir / "dashboard"
    home.mkdir(exist_ok=True)  # its cwd: no ./.env, no ./credentials
    env = {name: value for name, value in os.environ.items() if name not in _CONTROLLED_ENV}
    env.update(DATABASE_URL=url, DASHBOARD_API_KEY=key, NEXUS_DATA_DIR=str(home / ".nexus"),
               STORAGE_ENABLED="true", LOG_LEVEL="WARNING")  # fmt: skip
    port = upstreams.free_port()
    argv = [sys.executable, "-m", "nexus", "--role", "dashboard", "-H", upstreams.HOST, "-p", str(port)]
    service = upstreams.Service("dashboard", argv, port=port, log=home / "dashboard.log", cwd=home, env=env)
    service.wait_ready("/health/live", timeout=60.0)
    return service


_CONTROLLED_ENV = (
    "PORT",
    "HOST",
    "LOG_LEVEL",
    "WORKERS",
    "STORAGE_ENABLED",
    "DATABASE_URL",
    "NEXUS_DATA_DIR",
    "NEXUS_ROLE",
    "DASHBOARD_API_KEY",
    "DASHBOARD_DATABASE_URL",
    "DASHBOARD_SESSION_SECRET",
)
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def sign_in(port: int, key: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://{upstreams.HOST}:{port}", timeout=60.0, follow_redirects=False)
    form = client.get("/dashboard/login")
    token = _TOKEN.search(form.text)
    if token is None:
        raise RuntimeError(f"no CSRF token in the login form ({form.status_code})")
    response = client.post("/dashboard/login", data={"key": key, "next": "/dashboard/", "_csrf_token": token.group(1)})
    if response.status_code != 303:
        raise RuntimeError(f"signing in answered {response.status_code}: {response.text[:200]}")
    return client


def fetch(client: httpx.Client, path: str) -> tuple[int, bytes, float, str]:
    """Status, body, milliseconds until the whole body arrived, content type (an event
    stream is not read: its headers are what is timed)."""
    began = time.perf_counter()
    with client.stream("GET", path) as response:
        kind = response.headers.get("content-type", "")
        body = b"" if kind.startswith("text/event-stream") else response.read()
        return response.status_code, body, 1000 * (time.perf_counter() - began), kind


def measure_page(client: httpx.Client, path: str, warmup: int, samples: int, server: Server) -> dict[str, Any]:
    status, body, _, kind = fetch(client, path)
    if status == 404:
        return {"path": path, "status": 404, "missing": True}
    for _ in range(max(0, warmup - 1)):
        fetch(client, path)
    times, statuses = [], set()
    for _ in range(samples):
        status, body, ms, kind = fetch(client, path)
        times.append(ms)
        statuses.add(status)
    html = body.decode(errors="replace")
    with server.statements() as sql:
        fetch(client, path)
    result = {
        "path": path, "status": status if len(statuses) == 1 else sorted(statuses), "samples": samples,
        **percentiles(times), **sql, "bytes": len(body), **rows(html), "content_type": kind.split(";")[0],
    }  # fmt: skip
    if status >= 300:
        result["error"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))[:200]
    return result


def rows(html: str) -> dict[str, int]:
    """Table rows (``<tr``, headers included) of the page, of its longest table, and list
    items (``<li``) of its longest list."""
    tables = [chunk.partition("</table")[0] for chunk in html.split("<table")[1:]]
    lists = [chunk.partition("</ul")[0].partition("</ol")[0] for chunk in re.split(r"<[uo]l[\s>]", html)[1:]]
    return {
        "tr": len(TABLE_ROW.findall(html)),
        "longest_table": max((len(TABLE_ROW.findall(table)) for table in tables), default=0),
        "longest_list": max((len(LIST_ITEM.findall(items)) for items in lists), default=0),
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def pick(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None

    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": pick(1.0)}


def measure_pages(
    client: httpx.Client, ids: dict[str, Any], warmup: int, samples: int, server: Server
) -> dict[str, Any]:
    now = datetime.now(UTC)
    measured = {}
    for name, path in pages(ids, now):
        measured[name] = measure_page(client, path, warmup, samples, server)
        line = report.dashboard_page_line(name, measured[name])
        print(line, file=sys.stderr, flush=True)
    return measured


def bounded(small: dict[str, Any], large: dict[str, Any]) -> dict[str, list[str]]:
    """Pages with a table or list longer than a page of ``LIST_LIMIT`` (and a header), and
    pages whose longest table or list grew with the data (from the small seed) beyond that."""
    grows, long = [], []
    for name, page in large.items():
        if "bytes" not in page:
            continue
        length = max(page["longest_table"], page["longest_list"])
        if length > LIST_LIMIT + 2:
            long.append(name)
        before = small.get(name)
        if before and "bytes" in before:
            grew = length - max(before["longest_table"], before["longest_list"])
            if (grew > 0 and length > LIST_LIMIT + 2) or page["bytes"] > 3 * before["bytes"]:
                grows.append(name)
    return {"grows": grows, "over_50_rows": long}


# --- the server's side -----------------------------------------------------------------------

_STATEMENT = re.compile(
    r"^\S+ \S+ \S+ \[(\d+)\] LOG:  duration: ([\d.]+) ms  (parse|bind|execute|statement)[^:]*: (\w*)", re.M
)
_TRANSACTION = frozenset(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))


class Server:
    """The embedded server: what its log says of the statements run while a page is served."""

    def __init__(self, url: str, pgdata: Path) -> None:
        self.url, self.log = url, pgdata / "log"

    @contextlib.contextmanager
    def statements(self) -> Iterator[dict[str, Any]]:
        """Statements executed meanwhile (by anyone but this): how many (not counting BEGIN and
        the like), and their time in the server (parse, bind and execute, all statements), from
        ``log_min_duration_statement = 0``."""
        found: dict[str, Any] = {}
        mine = {asyncio.run(_configure(self.url, {"log_min_duration_statement": "0"}))}
        time.sleep(0.1)  # the backends take the new setting when their SIGHUP is handled
        offset = self.log.stat().st_size
        try:
            yield found
        finally:
            mine.add(asyncio.run(_configure(self.url, {"log_min_duration_statement": None})))
            with self.log.open("rb") as read:
                read.seek(offset)
                logged = read.read().decode(errors="replace")
            entries = [m for m in _STATEMENT.finditer(logged) if int(m.group(1)) not in mine]
            found["statements"] = sum(
                1 for m in entries if m.group(3) in ("execute", "statement") and m.group(4).upper() not in _TRANSACTION
            )
            found["sql_ms"] = round(sum(float(m.group(2)) for m in entries), 1)


# --- slow statements -------------------------------------------------------------------------


_AUTO_EXPLAIN = {"session_preload_libraries": "auto_explain", "auto_explain.log_min_duration": "{ms}ms",
                 "auto_explain.log_analyze": "on", "auto_explain.log_buffers": "on"}  # fmt: skip


@contextlib.contextmanager
def explaining(url: str, pgdata: Path, ms: int) -> Iterator[None]:
    """With ``ms``, the plans of statements slower than that while the body runs (the
    dashboard's: its sessions open in it) are printed to stderr from the server's log."""
    if not ms:
        yield
        return
    asyncio.run(_configure(url, {name: value.format(ms=ms) for name, value in _AUTO_EXPLAIN.items()}))
    log = pgdata / "log"
    offset = log.stat().st_size if log.exists() else 0
    try:
        yield
    finally:
        asyncio.run(_configure(url, dict.fromkeys(_AUTO_EXPLAIN)))
        with log.open("rb") as read:
            read.seek(offset)
            plans = read.read().decode(errors="replace")
        print(f"\n--- plans of statements over {ms} ms (auto_explain) ---\n{plans}", file=sys.stderr, flush=True)


async def _configure(url: str, settings: dict[str, str | None]) -> int:
    """Change server settings (None: back to the default) and reload them; the backend's pid."""
    connection = await asyncpg.connect(url)
    try:
        for name, value in settings.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'" if value else f"ALTER SYSTEM RESET {name}")
        await connection.execute("SELECT pg_reload_conf()")
        pid: int = await connection.fetchval("SELECT pg_backend_pid()")
        return pid
    finally:
        await connection.close()


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    owned = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="nexus-dashboard-")) if owned else Path(args.workdir)
    pgdata = workdir / "postgres"
    dashboard: upstreams.Service | None = None
    try:
        url = start_embedded_postgres(workdir)
        asyncio.run(_migrate(url))
        now = datetime.now(UTC)
        rich = linker_load.traffic(args.rich_conversations, args.rich_turns, args.seed)[0]
        stage_targets = sorted({t for t in (args.small, args.requests) if 0 < t <= args.requests})
        made = conversations(args.requests - len(rich), round(args.requests * BIG_SHARE), now, args.seed)
        stages = segments(made, [max(0, t - len(rich)) for t in stage_targets])
        key = "cnd_bench_" + secrets.token_urlsafe(24)
        result: dict[str, Any] = {"requests": args.requests, "samples": args.samples, "warmup": args.warmup,
                                  "stages": []}  # fmt: skip
        for number, (target, stage) in enumerate(zip(stage_targets, stages, strict=True)):
            print(f"seeding up to {target:,} requests ...", file=sys.stderr, flush=True)
            seeded = asyncio.run(seed_stage(url, stage, rich if number == 0 else []))
            print(f"  {seeded}", file=sys.stderr, flush=True)
            final = number == len(stages) - 1
            load = os.getloadavg()[0]  # other work on the machine shows in the p95s
            with explaining(url, pgdata, args.explain_ms):
                if dashboard is None:
                    dashboard = start_dashboard(workdir, url, key)
                ids = asyncio.run(targets(url))
                with contextlib.closing(sign_in(dashboard.port, key)) as client:
                    samples = args.samples if final else max(3, args.samples // 4)
                    measured = measure_pages(client, ids, args.warmup, samples, Server(url, pgdata))
            result["stages"].append({"target": target, "seeded": seeded, "targets": ids, "pages": measured,
                                     "loadavg": [load, os.getloadavg()[0]]})  # fmt: skip
        done = result["stages"]
        result["seeded"] = done[-1]["seeded"]
        result["pages"] = done[-1]["pages"]
        result["small"] = done[0]["seeded"]["requests"] if len(done) > 1 else None
        result["bounded"] = bounded(done[0]["pages"] if len(done) > 1 else {}, result["pages"])
        return result
    finally:
        if dashboard is not None:
            dashboard.stop()
        pg.stop_postgres(pgdata)  # it would stop when this process exits; now, deliberately
        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)  # its own stop at exit finds it gone
        if owned:
            import shutil  # noqa: PLC0415

            shutil.rmtree(workdir, ignore_errors=True)


async def _migrate(url: str) -> None:
    async with open_engine(url) as engine:
        await upgrade(engine)
        async with engine.connect() as connection:
            if await connection.scalar(text("SELECT EXISTS (SELECT FROM exchanges)")):
                raise SystemExit("the database of --workdir holds requests already: give an empty directory")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests stored (default 100000)")
    parser.add_argument("--small", type=int, default=10_000, help="measure first with this many (0: skip)")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per page (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first (default 3)")
    parser.add_argument("--rich-conversations", type=int, default=4, help="conversations with bodies (default 4)")
    parser.add_argument("--rich-turns", type=int, default=20, help="their main-line requests (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data (default 1)")
    parser.add_argument("--workdir", help="directory for the server's data (default: a temp dir)")
    parser.add_argument("--explain-ms", type=int, default=0, help="log plans of statements slower than this")
    parser.add_argument("--json", action="store_true", help="print one DASHBOARD_RESULT <json> line")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    def interrupted(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("interrupted: the dashboard and the server are stopped", file=sys.stderr)
        return 130
    print("DASHBOARD_RESULT " + json.dumps(result) if args.json else "\n".join(report.dashboard_lines(result)))
    return 0 if report.dashboard_ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
