"""The dashboard-only process's container (``--role dashboard``): reads, and nothing else.

No recorder, linker or upstream: such a process may run with a read-only database role
(``DASHBOARD_DATABASE_URL``), and must never write or migrate.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.adapters.persistence.database import open_optional_engine
from nexus.adapters.persistence.health import DatabaseProbe
from nexus.adapters.system import SystemClock
from nexus.application.use_cases.check_health import CheckHealth
from nexus.entrypoints.analysis_container import AnalysisRequestsContainer
from nexus.entrypoints.lifecycle import Lifecycle
from nexus.entrypoints.prompts_container import PromptsContainer
from nexus.entrypoints.read_container import ReadContainer
from nexus.entrypoints.settings import Settings


def _read_url(settings: Settings) -> str | None:
    return settings.dashboard_database_url or settings.database_url


class DashboardContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    lifecycle = providers.Singleton(Lifecycle)
    engine = providers.Resource(
        open_optional_engine,
        url=providers.Callable(_read_url, settings),
        enabled=settings.provided.storage_enabled,
        slow_query_ms=settings.provided.slow_query_threshold_ms,
        debug_sql=settings.provided.debug_sql,
    )
    credential_store = providers.Singleton(FileCredentialStore, directory=settings.provided.credentials_dir)
    check_health = providers.Factory(
        CheckHealth,
        probes=providers.List(credential_store, providers.Singleton(DatabaseProbe, engine=engine, recorder=None)),
    )
    reads = providers.Container(ReadContainer, engine=engine, credential_store=credential_store, clock=clock)
    prompts = providers.Container(PromptsContainer, settings=settings, clock=clock)
    analysis = providers.Container(
        AnalysisRequestsContainer, settings=settings, store=reads.analysis_store, clock=clock
    )
