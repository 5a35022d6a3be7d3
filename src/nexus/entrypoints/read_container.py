"""The read side, one container composed into both processes' containers.

The proxy's process (``--role all|proxy``) and the dashboard's alone (``--role dashboard``) read
the same way: queries over one engine, the live feed, usage reports. Each outer container
supplies its own engine (the dashboard's may use a read-only role) and credential store.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.memory_alert_ledger import MemoryAlertLedger
from nexus.adapters.memory_prompt_uses import MemoryPromptUses
from nexus.adapters.persistence.analyses import SqlAlchemyAnalysisStore
from nexus.adapters.persistence.conversation_queries import SqlAlchemyConversationQueries
from nexus.adapters.persistence.dashboard_queries import SqlAlchemyDashboardQueries
from nexus.adapters.persistence.exchange_queries import SqlAlchemyExchangeQueries
from nexus.adapters.persistence.limit_alerts import SqlAlchemyAlertLedger
from nexus.adapters.persistence.live_feed import live_feed_lifetime
from nexus.adapters.persistence.prompt_uses import SqlAlchemyPromptUses
from nexus.adapters.persistence.usage_queries import SqlAlchemyUsageQueries
from nexus.application.ports import Clock, CredentialStore
from nexus.application.ports.limit_alerts import AlertLedger
from nexus.application.ports.prompts import PromptUses
from nexus.application.use_cases.account_usage import UsageReports


def _usage_queries(engine: AsyncEngine | None) -> SqlAlchemyUsageQueries | None:
    return SqlAlchemyUsageQueries(engine) if engine is not None else None


def _alert_ledger(engine: AsyncEngine | None) -> AlertLedger:
    """Claims in PostgreSQL, shared by every worker; without storage, this process's own."""
    return SqlAlchemyAlertLedger(engine) if engine is not None else MemoryAlertLedger()


def _prompt_uses(engine: AsyncEngine | None) -> PromptUses:
    """Rendered prompts in PostgreSQL, for every worker and the dashboard; without storage,
    this process's own."""
    return SqlAlchemyPromptUses(engine) if engine is not None else MemoryPromptUses()


class ReadContainer(containers.DeclarativeContainer):
    engine: providers.Dependency[AsyncEngine | None] = providers.Dependency()  # None: storage off
    credential_store: providers.Dependency[CredentialStore] = providers.Dependency()
    clock: providers.Dependency[Clock] = providers.Dependency()

    exchange_queries = providers.Singleton(SqlAlchemyExchangeQueries, engine=engine)
    conversation_queries = providers.Singleton(SqlAlchemyConversationQueries, engine=engine)
    dashboard_queries = providers.Singleton(SqlAlchemyDashboardQueries, engine=engine)
    live_feed = providers.Resource(live_feed_lifetime, engine=engine)
    usage_queries = providers.Singleton(_usage_queries, engine=engine)
    usage_reports = providers.Singleton(UsageReports, queries=usage_queries, credentials=credential_store, clock=clock)
    alert_ledger = providers.Singleton(_alert_ledger, engine=engine)
    prompt_uses = providers.Singleton(_prompt_uses, engine=engine)
    analysis_store = providers.Singleton(SqlAlchemyAnalysisStore, engine=engine)


def read_dependencies(reads: Any) -> dict[str, providers.Provider[Any]]:
    """The read side's providers by the names handlers ask for (``reads``: the composed container)."""
    return {
        "exchange_queries": reads.exchange_queries,
        "conversation_queries": reads.conversation_queries,
        "dashboard_queries": reads.dashboard_queries,
        "live_feed": reads.live_feed,
        "usage_reports": reads.usage_reports,
        "alert_ledger": reads.alert_ledger,
        "prompt_uses": reads.prompt_uses,
        "analysis_store": reads.analysis_store,
    }
