"""The dashboard-only process's container (``--role dashboard``): reads, and nothing else.

No recorder, linker or upstream: such a process may run with a read-only database role
(``DASHBOARD_DATABASE_URL``), and must never write or migrate.
"""

from __future__ import annotations

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.adapters.persistence.conversation_queries import SqlAlchemyConversationQueries
from nexus.adapters.persistence.dashboard_queries import SqlAlchemyDashboardQueries
from nexus.adapters.persistence.database import open_optional_engine
from nexus.adapters.persistence.exchange_queries import SqlAlchemyExchangeQueries
from nexus.adapters.persistence.live_feed import live_feed_lifetime
from nexus.adapters.persistence.usage_queries import SqlAlchemyUsageQueries
from nexus.adapters.system import SystemClock
from nexus.application.use_cases.account_usage import UsageReports
from nexus.entrypoints.lifecycle import Lifecycle
from nexus.entrypoints.settings import Settings


def _usage_queries(engine: AsyncEngine | None) -> SqlAlchemyUsageQueries | None:
    return SqlAlchemyUsageQueries(engine) if engine is not None else None


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
    )
    exchange_queries = providers.Singleton(SqlAlchemyExchangeQueries, engine=engine)
    conversation_queries = providers.Singleton(SqlAlchemyConversationQueries, engine=engine)
    dashboard_queries = providers.Singleton(SqlAlchemyDashboardQueries, engine=engine)
    live_feed = providers.Resource(live_feed_lifetime, engine=engine)
    credential_store = providers.Singleton(FileCredentialStore, directory=settings.provided.credentials_dir)
    usage_queries = providers.Singleton(_usage_queries, engine=engine)
    usage_reports = providers.Singleton(UsageReports, queries=usage_queries, credentials=credential_store, clock=clock)
