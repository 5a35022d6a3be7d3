"""The composition root: with the read side it composes (``read_container``) and the dashboard
process's own container, the only modules that name concrete adapters."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus import __version__
from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.adapters.credentials.oauth_refresher import HttpxTokenRefresher
from nexus.adapters.persistence.database import open_optional_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.health import DatabaseProbe
from nexus.adapters.persistence.journal import FileJournal
from nexus.adapters.persistence.linking import linker_lifetime
from nexus.adapters.persistence.quarantine import FileQuarantine
from nexus.adapters.persistence.recording import recording_lifetime
from nexus.adapters.persistence.traffic_shares import SqlAlchemyTrafficShares
from nexus.adapters.persistence.write_ahead import WriteAheadLog
from nexus.adapters.recorder_process.process import RecorderProcess
from nexus.adapters.recorder_process.protocol import RecorderConfig
from nexus.adapters.slack.log_bridge import log_bridge_lifetime
from nexus.adapters.slack.targets import CredentialSlackTargets
from nexus.adapters.slack.webhook import HttpxWebhookSender, open_webhook_client
from nexus.adapters.system import SystemClock, Uuid4Ids
from nexus.adapters.telemetry.observers import build_observer, telemetry_lifetime
from nexus.adapters.telemetry.otel import build_telemetry, telemetry_configured
from nexus.adapters.test_samples import TestSampleWriter
from nexus.adapters.upstream.aiohttp_upstream import AiohttpUpstreamClient, open_upstream_session, proxy_for
from nexus.adapters.upstream.circuit_breaker import BreakerUpstreamClient, new_breaker
from nexus.adapters.webhook_process.process import WebhookProcess
from nexus.application.account_pool import AccountPool
from nexus.application.exchange import Exchange
from nexus.application.limits.admissions import Admissions, Used
from nexus.application.limits.limiter import TrafficLimiter
from nexus.application.limits.runaway import Runaway, RunawayGuard
from nexus.application.limits.sharing import LimitSharing
from nexus.application.notifications.background import run_in_background, running
from nexus.application.notifications.limit_watch import LimitWatch
from nexus.application.notifications.notifier import NotificationsProbe, SlackNotifier, slack_notifier
from nexus.application.notifications.telemetry_endpoint import TelemetryPoster
from nexus.application.ports import ExchangeObserver
from nexus.application.ports.exchange_store import ExchangeQuarantine, Recording
from nexus.application.ports.observer import FanOut
from nexus.application.recording.recorder import ExchangeRecorder
from nexus.application.recording.row import ExchangeRow
from nexus.application.retrying_upstream import RetryingUpstream
from nexus.application.token_accounting import CountingObserver, TokenAccounting, token_report_lifetime
from nexus.application.use_cases.check_health import CheckHealth
from nexus.application.use_cases.forward_request import ForwardRequest
from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.application.use_cases.resolve_credential import ResolveCredential
from nexus.domain.limit_alerts import LimitAlert
from nexus.domain.retry_policy import RetryPolicy
from nexus.domain.slack_message import Problem, SlackTarget
from nexus.entrypoints.analysis_container import AnalysisRequestsContainer, AnalysisWorkerContainer
from nexus.entrypoints.lifecycle import Lifecycle
from nexus.entrypoints.prompts_container import PromptsContainer
from nexus.entrypoints.read_container import ReadContainer
from nexus.entrypoints.settings import Settings

OAUTH_HTTP_TIMEOUT_S = 30.0


def _telemetry_if_configured() -> object:
    return build_telemetry(service_version=__version__) if telemetry_configured(os.environ) else None


def _recorder(
    *,
    engine: AsyncEngine | None,
    journal: FileJournal,
    quarantine: ExchangeQuarantine,
    on_row: Callable[[ExchangeRow], None],
    write_ahead: WriteAheadLog,
    watch: LimitWatch,
    settings: Settings,
) -> Recording | None:
    """The recorder when storage is on: in a process of its own (ADR 20), or on this event
    loop with the token counters hearing every row it builds."""
    if engine is None:
        return None
    if _in_a_process(settings):
        assert settings.database_url is not None
        return RecorderProcess(
            command=[sys.executable, "-m", "nexus.entrypoints.recorder_child"],
            config=RecorderConfig(
                database_url=settings.database_url,
                journal_dir=str(_data_path(settings.nexus_data_dir, "journal")),
                quarantine_dir=str(_data_path(settings.nexus_data_dir, "quarantine")),
                store_bodies=settings.store_bodies,
                queue_size=settings.recorder_queue_size,
                queue_bytes=settings.recorder_queue_bytes,
                batch_size=settings.recorder_batch_size,
                thread_rule=settings.thread_rule,
                slow_query_ms=settings.slow_query_threshold_ms,
                debug_sql=settings.debug_sql,
                log_level=settings.log_level,
                log_format=settings.log_format,
                link=True,
            ),
            write_ahead=write_ahead,
            journal=journal,
            pending_bytes=settings.recorder_queue_bytes,
            fsync_interval_s=settings.recorder_fsync_ms / 1000,
            on_stored=watch.on_account,
        )
    return ExchangeRecorder(
        store=SqlAlchemyExchangeStore(engine),
        journal=journal,
        quarantine=quarantine,
        on_row=on_row,
        store_bodies=settings.store_bodies,
        queue_size=settings.recorder_queue_size,
        queue_bytes=settings.recorder_queue_bytes,
        batch_size=settings.recorder_batch_size,
        write_ahead=write_ahead,
        fsync_interval_s=settings.recorder_fsync_ms / 1000,
        thread_rule=settings.thread_rule,
    )


def _in_a_process(settings: Settings) -> bool:
    """Whether the recorder (and the linker) run in the recorder process (ADR 20)."""
    return settings.recorder_process and settings.database_url is not None


def _links_here(settings: Settings) -> bool:
    return not _in_a_process(settings)


def _circuit_state_of(guarded: BreakerUpstreamClient) -> Callable[[], str]:
    return lambda: guarded.state


def _write_ahead_of(recorder: Recording | None) -> Callable[[Exchange], None] | None:
    """What the proxy calls before a client's last byte: the recorder's write-ahead, if it records."""
    return recorder.write_ahead if recorder is not None else None


def _recorder_or_counter(
    recorder: Recording | None,
    accounting: TokenAccounting,
    watch: LimitWatch,
    admissions: Admissions,
    pool: AccountPool,
) -> ExchangeObserver:
    """The recorder on this event loop (its rows feed the counters), or a counting observer
    for the token counters, the traffic limits, the account pool and the limit watch: beside
    the recorder process, or alone when storage is off."""
    if isinstance(recorder, ExchangeRecorder):
        return recorder
    on_usage = admissions.on_usage if admissions.configured else None
    counter = CountingObserver(
        accounting,
        on_rate_limit=watch.on_rate_limit,
        on_usage=on_usage,
        on_account_output=pool.on_output,
    )
    return counter if recorder is None else FanOut([recorder, counter])


def _row_hook(
    accounting: TokenAccounting, watch: LimitWatch, admissions: Admissions, pool: AccountPool
) -> Callable[[ExchangeRow], None]:
    """Every row the recorder builds goes to the token counters, the limit watch, the traffic
    limits (its tokens and cost) and the account pool (its account's output)."""

    def hook(row: ExchangeRow) -> None:
        accounting.on_row(row)
        watch.on_row(row)
        if row.account_id and row.output_tokens:
            pool.on_output(row.account_id, row.output_tokens)
        if admissions.configured:
            used = Used(row.input_tokens, row.cache_creation_input_tokens, row.output_tokens, row.cost_usd)
            admissions.on_usage(str(row.id), used)

    return hook


def _limit_sharing(
    limiter: TrafficLimiter, engine: AsyncEngine | None, clock: SystemClock, settings: Settings
) -> LimitSharing | None:
    """With storage and limits set: the workers (and replicas) share their counts."""
    if engine is None or not limiter.configured:
        return None
    interval_s = settings.rate_limit_sync_ms / 1000
    shares = SqlAlchemyTrafficShares(engine, fresh_s=3 * interval_s + 2)
    return LimitSharing(limiter=limiter, shares=shares, clock=clock, interval_s=interval_s)


def _runaway_alert(notifier: SlackNotifier | None) -> Callable[[Runaway], None] | None:
    """A runaway session, told on Slack as a problem of its domain (deduplicated there too)."""
    if notifier is None:
        return None

    def alert(runaway: Runaway) -> None:
        who = f"Session {runaway.session}" + (f" (agent {runaway.agent})" if runaway.agent else "")
        done = "slowed down" if runaway.action == "slow" else "refused"
        detail = f"{who} {done}: {runaway.reason}"
        notifier.report(Problem(kind="runaway", domain=runaway.domain, request_id=runaway.request_id, detail=detail))

    return alert


def _alert_sender(notifier: SlackNotifier | None) -> Callable[[LimitAlert], None] | None:
    return notifier.alert if notifier is not None else None


def _slack_default(settings: Settings) -> SlackTarget | None:
    """The global target, for domains whose credential file has no ``slack`` block."""
    if settings.slack_webhook_url is None:
        return None
    return SlackTarget(
        webhook_url=settings.slack_webhook_url,
        channel=settings.slack_channel,
        username=settings.slack_username,
        icon_emoji=settings.slack_icon_emoji,
    )


def _telemetry_poster(*, settings: Settings) -> TelemetryPoster | None:
    if settings.telemetry_endpoint is None or not settings.telemetry_enabled:
        return None
    return TelemetryPoster(poster=WebhookProcess(settings.telemetry_endpoint, name="Telemetry endpoint"))


def _sample_writer(*, settings: Settings) -> TestSampleWriter | None:
    return TestSampleWriter(settings.test_samples_dir) if settings.collect_test_samples else None


def _data_path(data_dir: str, name: str) -> Path:
    return Path(data_dir) / name


def _host_of(url: str) -> str:
    return urlsplit(url).hostname or url


class Container(containers.DeclarativeContainer):
    """Build one per app (or CLI command): resources live and die with it."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4Ids)
    lifecycle = providers.Singleton(Lifecycle)

    # Upstream: retries around a circuit breaker around the aiohttp client (ADR 0002, 0005, 0021).
    upstream_session = providers.Resource(
        open_upstream_session, max_connections=settings.provided.upstream_max_connections
    )
    http_upstream = providers.Singleton(
        AiohttpUpstreamClient,
        session=upstream_session,
        base_url=settings.provided.claude_api_base_url,
        timeout_s=settings.provided.upstream_timeout_s,
        proxy=providers.Callable(proxy_for, settings.provided.claude_api_base_url),
    )
    breaker = providers.Singleton(
        new_breaker,
        name=settings.provided.claude_api_base_url,
        fail_max=settings.provided.circuit_breaker_failures,
        reset_timeout_s=settings.provided.circuit_breaker_reset_seconds,
    )
    guarded_upstream = providers.Singleton(BreakerUpstreamClient, inner=http_upstream, breaker=breaker)
    retry_policy = providers.Singleton(
        RetryPolicy,
        max_retries=settings.provided.upstream_max_retries,
        budget_s=settings.provided.upstream_retry_budget_seconds,
    )
    # Read when an attempt is noted on an exchange (retries, failovers), never on the success path.
    circuit_state = providers.Singleton(_circuit_state_of, guarded_upstream)
    upstream = providers.Singleton(
        RetryingUpstream, inner=guarded_upstream, policy=retry_policy, clock=clock, circuit_state=circuit_state
    )

    # Credentials.
    oauth_http = providers.Resource(httpx.AsyncClient, timeout=OAUTH_HTTP_TIMEOUT_S)
    token_refresher = providers.Singleton(
        HttpxTokenRefresher,
        client=oauth_http,
        token_url=settings.provided.claude_oauth_token_url,
        client_id=settings.provided.claude_oauth_client_id,
    )
    credential_store = providers.Singleton(FileCredentialStore, directory=settings.provided.credentials_dir)
    keep_oauth_fresh = providers.Singleton(
        KeepOAuthFresh, store=credential_store, refresher=token_refresher, clock=clock
    )
    account_pool = providers.Singleton(AccountPool, clock=clock, rest_percent=settings.provided.pool_rest_percent)
    resolve_credential = providers.Singleton(
        ResolveCredential,
        store=credential_store,
        keep_fresh=keep_oauth_fresh,
        default_api_key=settings.provided.claude_api_key,
        pool=account_pool,
        client_auth=settings.provided.client_auth_on,
    )

    # Token accounting: in-memory counters and their console report; per-account usage in SQL.
    token_accounting = providers.Singleton(TokenAccounting, clock=clock)
    token_report = providers.Resource(
        token_report_lifetime, accounting=token_accounting, interval_s=settings.provided.token_report_interval
    )

    # Storage: the recorder is the first observer of every exchange (ADR 0007, 0010).
    engine = providers.Resource(
        open_optional_engine,
        url=settings.provided.database_url,
        enabled=settings.provided.storage_enabled,
        slow_query_ms=settings.provided.slow_query_threshold_ms,
        debug_sql=settings.provided.debug_sql,
    )
    journal = providers.Singleton(
        FileJournal, providers.Callable(_data_path, settings.provided.nexus_data_dir, "journal")
    )
    write_ahead_log = providers.Singleton(
        WriteAheadLog, providers.Callable(_data_path, settings.provided.nexus_data_dir, "journal")
    )
    quarantine = providers.Singleton(
        FileQuarantine, providers.Callable(_data_path, settings.provided.nexus_data_dir, "quarantine")
    )
    reads = providers.Container(ReadContainer, engine=engine, credential_store=credential_store, clock=clock)
    prompts = providers.Container(PromptsContainer, settings=settings, clock=clock)
    analysis_worker = providers.Container(
        AnalysisWorkerContainer, settings=settings, store=reads.analysis_store, clock=clock
    )
    analysis = providers.Container(
        AnalysisRequestsContainer,
        settings=settings,
        store=reads.analysis_store,
        clock=clock,
        worker=analysis_worker.worker,
    )

    # Notifications: Slack, the telemetry endpoint, test samples; each queues and works off
    # the request path (ADR 11).
    webhook_client = providers.Resource(open_webhook_client)
    webhook_sender = providers.Singleton(HttpxWebhookSender, client=webhook_client)
    slack_targets = providers.Singleton(
        CredentialSlackTargets, store=credential_store, default=providers.Callable(_slack_default, settings)
    )
    notifier = providers.Resource(
        running,
        providers.Singleton(
            slack_notifier,
            enabled=settings.provided.slack_on,
            targets=slack_targets,
            sender=webhook_sender,
            clock=clock,
        ),
    )
    log_bridge = providers.Resource(log_bridge_lifetime, notifier=notifier)
    limit_watch = providers.Resource(
        running,
        providers.Singleton(
            LimitWatch,
            reports=reads.usage_reports,
            ledger=reads.alert_ledger,
            thresholds=settings.provided.thresholds,
            interval_s=settings.provided.alert_check_seconds,
            clock=clock,
            send=providers.Callable(_alert_sender, notifier),
        ),
    )
    # Admission: the runaway guard and the traffic limits, before a request goes upstream.
    traffic_limiter = providers.Singleton(
        TrafficLimiter,
        clock=clock,
        everything=providers.Callable(Settings.traffic_limits, settings, "rate_limit"),
        per_domain=providers.Callable(Settings.traffic_limits, settings, "domain_rate_limit"),
        per_key=providers.Callable(Settings.traffic_limits, settings, "key_rate_limit"),
    )
    runaway_guard = providers.Singleton(
        RunawayGuard,
        clock=clock,
        requests_per_minute=settings.provided.runaway_requests_per_minute,
        window_percent=settings.provided.runaway_window_percent,
        minutes=settings.provided.runaway_minutes,
        action=settings.provided.runaway_action,
        alert=providers.Callable(_runaway_alert, notifier),
    )
    admissions = providers.Singleton(Admissions, limiter=traffic_limiter, guard=runaway_guard)
    limit_sharing = providers.Resource(
        run_in_background,
        providers.Singleton(_limit_sharing, traffic_limiter, engine, clock, settings),
        "traffic-limit-sharing",
    )
    forward_request = providers.Singleton(
        ForwardRequest,
        resolve_credential=resolve_credential,
        upstream=upstream,
        admissions=admissions,
        circuit_state=circuit_state,
    )
    telemetry_poster = providers.Resource(running, providers.Singleton(_telemetry_poster, settings=settings))
    test_samples = providers.Resource(running, providers.Singleton(_sample_writer, settings=settings))

    # The recorder, after the notifications: the limit watch hears every row it builds.
    recorder = providers.Singleton(
        _recorder,
        engine=engine,
        journal=journal,
        quarantine=quarantine,
        on_row=providers.Callable(_row_hook, token_accounting, limit_watch, admissions, account_pool),
        write_ahead=write_ahead_log,
        watch=limit_watch,
        settings=settings,
    )
    recording = providers.Resource(
        recording_lifetime, engine=engine, recorder=recorder, retention_days=settings.provided.storage_retention_days
    )
    proxy_write_ahead = providers.Callable(_write_ahead_of, recording)
    # With the recorder process, the linker runs there.
    linker = providers.Resource(
        linker_lifetime, engine=engine, recording=recording, enabled=providers.Callable(_links_here, settings)
    )
    database_probe = providers.Singleton(DatabaseProbe, engine=engine, recorder=recorder, quarantine=quarantine)

    # Observability.
    telemetry = providers.Singleton(_telemetry_if_configured)
    telemetry_flush = providers.Resource(telemetry_lifetime, telemetry=telemetry)
    exchange_observer = providers.Singleton(
        build_observer,
        telemetry=telemetry,
        debug=settings.provided.debug,
        upstream_host=providers.Callable(_host_of, settings.provided.claude_api_base_url),
        recorder=providers.Callable(
            _recorder_or_counter,
            recorder=recording,
            accounting=token_accounting,
            watch=limit_watch,
            admissions=admissions,
            pool=account_pool,
        ),
        workers=providers.List(notifier, telemetry_poster, test_samples),
    )
    check_health = providers.Factory(
        CheckHealth,
        probes=providers.List(
            guarded_upstream,
            credential_store,
            database_probe,
            providers.Singleton(NotificationsProbe, notifier, telemetry_poster),
        ),
    )


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
