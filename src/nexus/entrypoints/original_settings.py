"""Settings the original claude-nexus-proxy read that this proxy does not, each with what to do
instead: named in a start-up warning, so a ``.env`` carried over is never silently ignored."""

from __future__ import annotations

from collections.abc import Mapping

_USE_DATABASE_URL = "set DATABASE_URL (postgresql://user:password@host:port/name) instead"
_RATE_LIMITS = "limits here are per minute: RATE_LIMIT_* / DOMAIN_RATE_LIMIT_* / KEY_RATE_LIMIT_*_PER_MINUTE"
_NOT_NEEDED = "not needed here"
_PER_MESSAGE_CUT = (
    "the original read it but never cut a message by it; AI_HEAD_MESSAGES, AI_TAIL_MESSAGES and"
    " AI_MAX_PROMPT_TOKENS bound the prompt here"
)

UNSUPPORTED: dict[str, str] = {
    "NODE_ENV": "errors never expose internals here, whatever the environment",
    "PROXY_SERVER_TIMEOUT": "the server never times a request out; CLAUDE_API_TIMEOUT bounds upstream",
    "API_KEY_SALT": "no key hash is stored (the original's api_key_hash column was always empty)",
    "DB_HOST": _USE_DATABASE_URL,
    "DB_PORT": _USE_DATABASE_URL,
    "DB_NAME": _USE_DATABASE_URL,
    "DB_USER": _USE_DATABASE_URL,
    "DB_PASSWORD": _USE_DATABASE_URL,
    "DB_SSL": "add ?ssl=require to DATABASE_URL instead",
    "DB_POOL_SIZE": "the pool is sized per process by the proxy itself",
    "STORAGE_BATCH_SIZE": "RECORDER_BATCH_SIZE",
    "STORAGE_BATCH_INTERVAL": "RECORDER_FSYNC_MS bounds the group commit",
    "STORAGE_ADAPTER_CLEANUP_MS": _NOT_NEEDED,
    "STORAGE_ADAPTER_RETENTION_MS": "STORAGE_RETENTION_DAYS drops old partitions",
    "ENABLE_HEALTH_CHECKS": "/health, /health/live and /health/ready are always served",
    "ENABLE_METRICS": "traffic limits are on when a RATE_LIMIT_* setting is set",
    "ENABLE_NOTIFICATIONS": "Slack is on when SLACK_WEBHOOK_URL is set (SLACK_ENABLED)",
    "LOG_JSON": "LOG_FORMAT=json or LOG_FORMAT=text",
    "RATE_LIMIT_WINDOW_MS": _RATE_LIMITS,
    "RATE_LIMIT_MAX_REQUESTS": _RATE_LIMITS,
    "RATE_LIMIT_MAX_TOKENS": _RATE_LIMITS,
    "DOMAIN_RATE_LIMIT_WINDOW_MS": _RATE_LIMITS,
    "DOMAIN_RATE_LIMIT_MAX_REQUESTS": _RATE_LIMITS,
    "DOMAIN_RATE_LIMIT_MAX_TOKENS": _RATE_LIMITS,
    "MAX_MESSAGE_COUNT": "bodies are passed on as sent; Anthropic enforces its own limits (MAX_REQUEST_SIZE)",
    "MAX_SYSTEM_LENGTH": "bodies are passed on as sent; Anthropic enforces its own limits (MAX_REQUEST_SIZE)",
    "MAX_MESSAGE_LENGTH": "bodies are passed on as sent; Anthropic enforces its own limits (MAX_REQUEST_SIZE)",
    "MAX_TOTAL_LENGTH": "bodies are passed on as sent; Anthropic enforces its own limits (MAX_REQUEST_SIZE)",
    "MESSAGE_CACHE_SIZE": _NOT_NEEDED,
    "CREDENTIAL_CACHE_TTL": "credential files are re-read when they change on disk",
    "CREDENTIAL_CACHE_SIZE": "credential files are re-read when they change on disk",
    "SPARK_API_URL": "the Spark recommendation pass-through is not part of this proxy",
    "SPARK_API_KEY": "the Spark recommendation pass-through is not part of this proxy",
    "SPARK_ENABLED": "the Spark recommendation pass-through is not part of this proxy",
    "MCP_GITHUB_WEBHOOK_SECRET": "prompts sync on MCP_SYNC_INTERVAL and on POST /api/mcp/sync",
    "MCP_CACHE_TTL": _NOT_NEEDED,
    "MCP_CACHE_SIZE": _NOT_NEEDED,
    "MCP_WATCH_FILES": "MCP_PROMPTS_DIR is re-read when it changes",
    "AI_ANALYSIS_GEMINI_REQUEST_TIMEOUT_MS": "AI_ANALYSIS_REQUEST_TIMEOUT_MS",
    "AI_ANALYSIS_RATE_LIMIT_RETRIEVAL": "reading an analysis is not rate limited",
    "AI_MAX_CONTEXT_TOKENS": "AI_MAX_PROMPT_TOKENS",
    "AI_MAX_PROMPT_TOKENS_BASE": "AI_MAX_PROMPT_TOKENS",
    "AI_TOKENIZER_SAFETY_MARGIN": "AI_MAX_PROMPT_TOKENS",
    "AI_TRUNCATION_STRATEGY": "AI_HEAD_MESSAGES and AI_TAIL_MESSAGES",
    "AI_ESTIMATED_CHARS_PER_TOKEN": _NOT_NEEDED,
    "AI_ANALYSIS_PROMPT_VERSION": _NOT_NEEDED,
    "AI_ANALYSIS_INPUT_TRUNCATION_TARGET_TOKENS": "AI_MAX_PROMPT_TOKENS",
    # The original's per-message token cut (the first N and last M tokens of a long message):
    # its config read these names, but its truncation code never used them.
    "AI_ANALYSIS_TRUNCATE_FIRST_N_TOKENS": _PER_MESSAGE_CUT,
    "AI_ANALYSIS_TRUNCATE_LAST_M_TOKENS": _PER_MESSAGE_CUT,
    "PROXY_API_URL": "the dashboard reads the database itself (DASHBOARD_DATABASE_URL or DATABASE_URL)",
    "DASHBOARD_CACHE_TTL": "pages read current data",
    "DASHBOARD_PORT": "PORT, with NEXUS_ROLE=dashboard (default 3001)",
    "ANTHROPIC_INPUT_COST_PER_MTOK": "costs come from each model's own price",
    "ANTHROPIC_OUTPUT_COST_PER_MTOK": "costs come from each model's own price",
}
# Families the original defined without a fixed list of names.
UNSUPPORTED_PREFIXES: dict[str, str] = {"AI_ANALYSIS_ENABLE_": "the original defined these flags but never read them"}


def unsupported_in(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The original's settings present (and not empty) in ``environ``, each with its advice."""
    found = []
    for name in sorted(environ):
        if not environ[name].strip():
            continue
        advice = UNSUPPORTED.get(name)
        if advice is None:
            advice = next((text for prefix, text in UNSUPPORTED_PREFIXES.items() if name.startswith(prefix)), None)
        if advice is not None:
            found.append((name, advice))
    return found
