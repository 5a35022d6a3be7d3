"""One typed settings object, read from the environment (after ``.env`` / ``--env-file``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from nexus.domain.limit_alerts import InvalidThresholds, parse_thresholds
from nexus.domain.slack_message import webhook_allowed
from nexus.domain.traffic_limits import TrafficLimits

DEFAULT_OAUTH_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"  # Claude Code's public PKCE client


def mask_url_password(url: str) -> str:
    """A connection URL fit for logs: the password replaced by stars."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is no number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_GEMINI_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class SettingsError(Exception):
    """A setting has a value that cannot be used; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every setting, named as its environment variable in lower case.

    The README's configuration table documents each one; keep the two in step.
    """

    port: int = 3000
    host: str = "0.0.0.0"  # noqa: S104 -- a proxy for a team listens on every interface by default
    claude_api_base_url: str = "https://api.anthropic.com"
    claude_api_timeout: int = 600_000
    claude_api_key: str | None = None
    credentials_dir: str = "credentials"
    enable_client_auth: bool | None = None  # None: on, with a start-up note where the original differs
    cors_allowed_origins: str = ""
    client_setup_dir: str | None = None
    trust_proxy_headers: bool = False
    max_request_size: int = 32 * 1024 * 1024
    claude_oauth_token_url: str = "https://platform.claude.com/v1/oauth/token"  # noqa: S105 -- a URL
    claude_oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID
    upstream_max_connections: int = 0  # 0: no limit (a limit would queue streams silently)
    upstream_max_retries: int = 2
    upstream_retry_budget_seconds: float = 20.0
    circuit_breaker_failures: int = 5
    circuit_breaker_reset_seconds: float = 30.0
    shutdown_drain_seconds: float = 30.0
    workers: int = 1
    database_url: str | None = None
    nexus_data_dir: str = ".nexus"
    storage_enabled: bool = True
    store_bodies: bool = True
    storage_retention_days: int | None = None
    recorder_queue_size: int = 10_000
    recorder_queue_bytes: int = 32 * 1024 * 1024
    recorder_batch_size: int = 500
    recorder_fsync_ms: int = 200
    recorder_process: bool = True
    thread_rule: Literal["any_client", "original"] = "any_client"
    slow_query_threshold_ms: int = 5000
    debug_sql: bool = False
    dashboard_api_key: str | None = None
    internal_api_key: str | None = None
    enable_dashboard: bool = True
    dashboard_session_secret: str | None = None
    dashboard_database_url: str | None = None
    dashboard_generate_key: bool = False
    nexus_role: Literal["all", "proxy", "dashboard"] = "all"
    token_report_interval: int = 10
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    debug: bool = False
    slack_webhook_url: str | None = None
    slack_channel: str | None = None
    slack_username: str = "Claude Nexus Proxy"
    slack_icon_emoji: str = ":robot_face:"
    slack_enabled: bool | None = None  # None: on when a webhook is set
    telemetry_endpoint: str | None = None
    telemetry_enabled: bool = True
    collect_test_samples: bool = False
    test_samples_dir: str = "test-samples"
    alert_thresholds: str = "80,90,100"
    alert_check_seconds: float = 5.0
    mcp_enabled: bool = False
    mcp_prompts_dir: str = "prompts"
    mcp_allowed_hosts: str = ""
    mcp_github_owner: str | None = None
    mcp_github_repo: str | None = None
    mcp_github_branch: str = "main"
    mcp_github_path: str = "prompts/"
    mcp_github_token: str | None = None
    mcp_github_api_url: str = "https://api.github.com"
    mcp_sync_interval: int = 300
    rate_limit_requests_per_minute: int | None = None
    rate_limit_tokens_per_minute: int | None = None
    rate_limit_concurrent_streams: int | None = None
    rate_limit_daily_usd: float | None = None
    domain_rate_limit_requests_per_minute: int | None = None
    domain_rate_limit_tokens_per_minute: int | None = None
    domain_rate_limit_concurrent_streams: int | None = None
    domain_rate_limit_daily_usd: float | None = None
    key_rate_limit_requests_per_minute: int | None = None
    key_rate_limit_tokens_per_minute: int | None = None
    key_rate_limit_concurrent_streams: int | None = None
    key_rate_limit_daily_usd: float | None = None
    rate_limit_sync_ms: int = 1000
    runaway_requests_per_minute: int | None = None
    runaway_window_percent: float | None = None
    runaway_minutes: float = 5.0
    runaway_action: Literal["slow", "refuse"] = "slow"
    pool_rest_percent: float = 95.0
    ai_worker_enabled: bool = False
    ai_analyzer: Literal["gemini", "claude"] = "gemini"
    ai_worker_poll_interval_ms: int = 5000
    ai_worker_max_concurrent_jobs: int = 3
    ai_worker_job_timeout_minutes: float = 5.0
    ai_analysis_max_retries: int = 3
    ai_analysis_request_timeout_ms: int = 60_000
    ai_max_prompt_tokens: int | None = None  # None: the analyzer's own default
    ai_head_messages: int = 5
    ai_tail_messages: int = 20
    ai_analysis_rate_limit_creation: int = 15
    gemini_api_key: str | None = None
    gemini_model_name: str = "gemini-2.5-pro"
    gemini_api_url: str = "https://generativelanguage.googleapis.com/v1beta/models"
    ai_analysis_claude_model: str = "claude-sonnet-5"
    ai_analysis_claude_url: str | None = None  # None: this proxy on loopback
    ai_analysis_claude_host: str | None = None
    ai_analysis_claude_api_key: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("must be a TCP port (0-65535) - at `$.port`")
        for name in (
            "claude_api_timeout",
            "max_request_size",
            "circuit_breaker_failures",
            "circuit_breaker_reset_seconds",
            "workers",
            "recorder_queue_size",
            "recorder_queue_bytes",
            "recorder_batch_size",
            "alert_check_seconds",
            "mcp_sync_interval",
            "rate_limit_sync_ms",
            "runaway_minutes",
            "ai_worker_poll_interval_ms",
            "ai_worker_max_concurrent_jobs",
            "ai_worker_job_timeout_minutes",
            "ai_analysis_max_retries",
            "ai_analysis_request_timeout_ms",
            "ai_analysis_rate_limit_creation",
            "ai_head_messages",
            "ai_tail_messages",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"must be positive - at `$.{name}`")
        for name in (
            "upstream_max_connections",
            "recorder_fsync_ms",
            "token_report_interval",
            "slow_query_threshold_ms",
            "upstream_max_retries",
            "upstream_retry_budget_seconds",
            "shutdown_drain_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"must not be negative - at `$.{name}`")
        self._check_traffic_limits()
        self._check_serving()
        if self.storage_retention_days is not None and self.storage_retention_days <= 0:
            raise ValueError("must be a positive number of days - at `$.storage_retention_days`")
        for name in ("database_url", "dashboard_database_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("postgresql://", "postgres://")):
                raise ValueError(f"must be a postgresql:// or postgres:// URL - at `$.{name}`")
        self._check_urls()
        if self.ai_worker_enabled and (problem := self.analysis_worker_problem()):
            raise ValueError(f"{problem} - at `$.ai_worker_enabled`")
        try:
            parse_thresholds(self.alert_thresholds)
        except InvalidThresholds as exc:
            raise ValueError(f"{exc} - at `$.alert_thresholds`") from None

    def _check_serving(self) -> None:
        if self.nexus_role == "dashboard" and not self.enable_dashboard:
            raise ValueError("is false, so NEXUS_ROLE=dashboard would serve nothing - at `$.enable_dashboard`")
        for origin in self.cors_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin (scheme://host[:port], or *) - at `$.cors_allowed_origins`"
                )

    def _check_traffic_limits(self) -> None:
        if self.runaway_requests_per_minute is not None and self.runaway_requests_per_minute <= 0:
            raise ValueError("must be positive (unset it to turn the guard off) - at `$.runaway_requests_per_minute`")
        if not 0 < self.pool_rest_percent <= 100:
            raise ValueError("must be a percentage above 0, at most 100 - at `$.pool_rest_percent`")
        if self.runaway_window_percent is not None and not 0 < self.runaway_window_percent <= 100:
            raise ValueError("must be a percentage above 0, at most 100 - at `$.runaway_window_percent`")
        for prefix in ("rate_limit", "domain_rate_limit", "key_rate_limit"):
            for measure in ("requests_per_minute", "tokens_per_minute", "concurrent_streams", "daily_usd"):
                value = getattr(self, f"{prefix}_{measure}")
                if value is not None and value <= 0:
                    raise ValueError(f"must be positive (unset it for no limit) - at `$.{prefix}_{measure}`")

    def _check_urls(self) -> None:
        if self.slack_webhook_url is not None and not webhook_allowed(self.slack_webhook_url):
            raise ValueError("must be an https:// URL (http:// only to this machine) - at `$.slack_webhook_url`")
        if self.telemetry_endpoint is not None and not _is_http_url(self.telemetry_endpoint):
            raise ValueError("must be an http:// or https:// URL with a host - at `$.telemetry_endpoint`")
        if not self.claude_api_base_url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL - at `$.claude_api_base_url`")
        if not webhook_allowed(self.mcp_github_api_url):
            raise ValueError("must be an https:// URL (http:// only to this machine) - at `$.mcp_github_api_url`")
        for name in ("gemini_api_url", "ai_analysis_claude_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"must be an http:// or https:// URL - at `$.{name}`")
        if self.gemini_api_key is not None and not _GEMINI_KEY.match(self.gemini_api_key):
            raise ValueError("must be letters, digits, - and _ only - at `$.gemini_api_key`")
        if bool(self.mcp_github_owner) != bool(self.mcp_github_repo):
            raise ValueError("MCP_GITHUB_OWNER and MCP_GITHUB_REPO go together - at `$.mcp_github_repo`")

    def __repr__(self) -> str:
        # Settings get logged and shown in tracebacks: never with a secret in them.
        shown = {name: getattr(self, name) for name in self.__struct_fields__}
        if self.claude_api_key:
            shown["claude_api_key"] = "********"
        if self.database_url:
            shown["database_url"] = mask_url_password(self.database_url)
        for secret in (
            "dashboard_api_key",
            "internal_api_key",
            "dashboard_session_secret",
            "slack_webhook_url",
            "mcp_github_token",
            "gemini_api_key",
            "ai_analysis_claude_api_key",
        ):
            if getattr(self, secret):
                shown[secret] = "********"
        if self.dashboard_database_url:
            shown["dashboard_database_url"] = mask_url_password(self.dashboard_database_url)
        if self.telemetry_endpoint:
            shown["telemetry_endpoint"] = mask_url_password(self.telemetry_endpoint)
        return "Settings(" + ", ".join(f"{name}={value!r}" for name, value in shown.items()) + ")"

    @property
    def upstream_timeout_s(self) -> float:
        return self.claude_api_timeout / 1000

    @property
    def thresholds(self) -> tuple[int, ...]:
        return parse_thresholds(self.alert_thresholds)

    @property
    def slack_on(self) -> bool:
        """Whether Slack messages are sent at all (a domain's block may still silence it)."""
        return self.slack_enabled if self.slack_enabled is not None else self.slack_webhook_url is not None

    def analysis_worker_problem(self) -> str | None:
        """Why the analysis worker cannot run with these settings, or None."""
        if not self.storage_enabled:
            return "the analysis worker keeps its jobs in the database: it needs storage (STORAGE_ENABLED=true)"
        if self.ai_analyzer == "gemini" and not self.gemini_api_key:
            return "AI_ANALYZER=gemini needs GEMINI_API_KEY (or set AI_ANALYZER=claude to analyse through this proxy)"
        return None

    def traffic_limits(self, prefix: str) -> TrafficLimits:
        """``RATE_LIMIT_*`` (all traffic), ``DOMAIN_RATE_LIMIT_*`` or ``KEY_RATE_LIMIT_*``."""
        return TrafficLimits(
            requests_per_minute=getattr(self, f"{prefix}_requests_per_minute"),
            tokens_per_minute=getattr(self, f"{prefix}_tokens_per_minute"),
            concurrent_streams=getattr(self, f"{prefix}_concurrent_streams"),
            daily_usd=getattr(self, f"{prefix}_daily_usd"),
        )

    @property
    def github_sync_on(self) -> bool:
        return bool(self.mcp_github_owner and self.mcp_github_repo)

    @property
    def serves_dashboard(self) -> bool:
        return self.enable_dashboard and self.nexus_role in ("all", "dashboard")

    @property
    def management_api_key(self) -> str | None:
        """The key of the management API and the dashboard: ``INTERNAL_API_KEY`` stands in
        for ``DASHBOARD_API_KEY``, as in the original."""
        return self.dashboard_api_key or self.internal_api_key

    @property
    def client_auth_on(self) -> bool:
        """Whether a domain file's ``client_api_key`` is demanded of its clients."""
        return self.enable_client_auth is not False

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(origin.strip().rstrip("/") for origin in self.cors_allowed_origins.split(",") if origin.strip())


_BOOLEAN_FIELDS = frozenset(
    field.name
    for field in msgspec.inspect.type_info(Settings).fields  # type: ignore[attr-defined]
    if isinstance(field.type, msgspec.inspect.BoolType)
    or (
        isinstance(field.type, msgspec.inspect.UnionType)
        and any(isinstance(kind, msgspec.inspect.BoolType) for kind in field.type.types)
    )
)
_BOOLEAN_WORDS = {"yes": "true", "on": "true", "no": "false", "off": "false"}


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build settings from environment variables; ``overrides`` (CLI flags) win.

    An empty variable counts as unset, so ``CLAUDE_API_KEY=`` in a ``.env`` disables the key.
    """
    values: dict[str, Any] = {}
    for name in Settings.__struct_fields__:
        raw = environ.get(name.upper())
        if raw is not None and raw.strip() != "":
            values[name] = raw.strip()
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    if "log_format" in values:
        values["log_format"] = values["log_format"].lower()
    for name in _BOOLEAN_FIELDS & values.keys():
        values[name] = _BOOLEAN_WORDS.get(values[name].lower(), values[name])
    values.update({name: value for name, value in overrides.items() if value is not None})
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc))) from None


def _name_variable(message: str) -> str:
    text, _, location = message.partition(" - at `$.")
    if not location:
        return message
    return f"{location.rstrip('`').upper()}: {text}"
