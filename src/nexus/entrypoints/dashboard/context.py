"""What every page's layout needs: the navigation, the domain filter and its choices."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec

from nexus.application.ports.dashboard_queries import DashboardQueries
from nexus.application.ports.exchange_queries import QueriesUnavailable

PAGES = (
    ("overview", "Overview", "/dashboard/"),
    ("live", "Live", "/dashboard/live"),
    ("requests", "Requests", "/dashboard/requests"),
    ("conversations", "Conversations", "/dashboard/conversations"),
    ("usage", "Usage", "/dashboard/usage"),
    ("prompts", "Prompts", "/dashboard/prompts"),
)
_DOMAIN_CHOICES_TTL_S = 30.0
_DOMAIN_WINDOW = timedelta(days=30)


class Nav(msgspec.Struct, frozen=True):
    links: tuple[tuple[str, str, str], ...]
    domains: list[str]
    domain: str | None
    query: str  # "?domain=..." to carry the filter from page to page
    keep: list[tuple[str, str]]  # other query parameters the filter form resubmits


class _DomainChoices:
    """The filter's choices, read at most every 30 s: every page shows them."""

    def __init__(self) -> None:
        self._cached: list[str] = []
        self._at = 0.0

    async def get(self, queries: DashboardQueries) -> list[str]:
        if time.monotonic() - self._at > _DOMAIN_CHOICES_TTL_S:
            try:
                self._cached = await queries.domains(datetime.now(UTC) - _DOMAIN_WINDOW)
            except QueriesUnavailable:
                return self._cached
            self._at = time.monotonic()
        return self._cached


domain_choices = _DomainChoices()


async def page_context(
    page: str, queries: DashboardQueries, *, domain: str | None, keep: dict[str, Any] | None = None, **values: Any
) -> dict[str, Any]:
    domains = await domain_choices.get(queries)
    if domain and domain not in domains:
        domains = [domain, *domains]
    nav = Nav(
        links=PAGES,
        domains=domains,
        domain=domain,
        query=f"?{urlencode({'domain': domain})}" if domain else "",
        keep=[(name, str(value)) for name, value in (keep or {}).items() if value not in (None, "")],
    )
    return {"page": page, "nav": nav, "domain": domain, **values}
