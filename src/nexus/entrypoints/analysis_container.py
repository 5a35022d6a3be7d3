"""The AI analysis worker and the model it asks, composed into the proxy's container (the
worker runs in-process with ``AI_WORKER_ENABLED``) and run alone by ``claude-nexus-proxy worker``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from dependency_injector import containers, providers

from nexus.adapters.analysis.claude import ClaudeAnalyzer
from nexus.application.analysis.creation_limit import CreationLimit
from nexus.application.analysis.requests import Analyses
from nexus.application.analysis.worker import AnalysisWorker
from nexus.application.notifications.background import run_in_background
from nexus.application.ports.analysis import AnalysisStore, Analyzer
from nexus.application.ports.system import Clock
from nexus.entrypoints.settings import Settings

# Budgets for the conversation sent: Gemini 2.5's 1M-token context with room for the brief
# and the answer (the original's 855 k), Claude's 200 k likewise.
DEFAULT_PROMPT_TOKENS = {"gemini": 855_000, "claude": 150_000}
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 -- names the wildcard, binds nothing


def proxy_url(settings: Settings) -> str:
    if settings.ai_analysis_claude_url:
        return settings.ai_analysis_claude_url
    host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


async def _analyzer(settings: Settings) -> AsyncIterator[Analyzer | None]:
    if settings.analysis_worker_problem() is not None:
        yield None
        return
    timeout_s = settings.ai_analysis_request_timeout_ms / 1000
    if settings.ai_analyzer == "gemini":
        # Imported here: google-genai takes about 1.5 s to import, which every start of a proxy
        # without AI analysis would pay.
        from nexus.adapters.analysis.gemini import GeminiAnalyzer  # noqa: PLC0415

        assert settings.gemini_api_key is not None
        gemini = GeminiAnalyzer(
            api_key=settings.gemini_api_key,
            model=settings.gemini_model_name,
            api_url=settings.gemini_api_url,
            timeout_s=timeout_s,
        )
        try:
            yield gemini
        finally:
            await gemini.close()
        return
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        yield ClaudeAnalyzer(
            client=client,
            proxy_url=proxy_url(settings),
            host=settings.ai_analysis_claude_host,
            api_key=settings.ai_analysis_claude_api_key,
            model=settings.ai_analysis_claude_model,
        )


def _worker(settings: Settings, store: AnalysisStore, analyzer: Analyzer | None, clock: Clock) -> AnalysisWorker | None:
    if not settings.ai_worker_enabled or analyzer is None:
        return None
    return AnalysisWorker(
        store=store,
        analyzer=analyzer,
        clock=clock,
        max_concurrent=settings.ai_worker_max_concurrent_jobs,
        poll_s=settings.ai_worker_poll_interval_ms / 1000,
        max_attempts=settings.ai_analysis_max_retries,
        job_timeout_s=settings.ai_worker_job_timeout_minutes * 60,
        max_prompt_tokens=settings.ai_max_prompt_tokens or DEFAULT_PROMPT_TOKENS[settings.ai_analyzer],
        head_tail=(settings.ai_head_messages, settings.ai_tail_messages),
    )


class AnalysisWorkerContainer(containers.DeclarativeContainer):
    """The worker and its model: in the proxy's process with ``AI_WORKER_ENABLED``, or alone."""

    settings = providers.Dependency(instance_of=Settings)
    store: providers.Dependency[AnalysisStore] = providers.Dependency()
    clock: providers.Dependency[Clock] = providers.Dependency()

    analyzer = providers.Resource(_analyzer, settings)
    worker = providers.Resource(
        run_in_background, providers.Singleton(_worker, settings, store, analyzer, clock), "analysis-worker"
    )


class AnalysisRequestsContainer(containers.DeclarativeContainer):
    """Requesting analyses (API, dashboard); ``worker``, when in this process, is nudged."""

    settings = providers.Dependency(instance_of=Settings)
    store: providers.Dependency[AnalysisStore] = providers.Dependency()
    clock: providers.Dependency[Clock] = providers.Dependency()
    worker: providers.Dependency[AnalysisWorker | None] = providers.Dependency(default=None)

    limit = providers.Singleton(
        CreationLimit, per_minute=settings.provided.ai_analysis_rate_limit_creation, clock=clock
    )
    analyses = providers.Singleton(Analyses, store=store, limit=limit, worker=worker)
