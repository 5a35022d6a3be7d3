"""Query parameters as the dashboard's pages read them: as text, checked here, so a bad value is
explained (or ignored) on the page instead of answered with a bare 400.

Each parser gives ``None`` for what it cannot read; the page says what that means for it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request

MAX_PARAM = 255  # characters of a name (domain, model, account) a page reads at most
MAX_SEARCH = 200  # characters of search text, as the API's ``q`` and ``search``
_MAX_MOMENT = 64  # no ISO 8601 timestamp is longer
_MAX_DIGITS = 18  # int() of a longer string is slow (and refused past 4,300 digits)


def text(value: str | None, *, limit: int | None = None) -> str | None:
    """The value without surrounding blanks, cut to ``limit`` characters; ``None`` when empty."""
    value = value.strip() if value else None
    return value[:limit] if value else None


def whole(value: str | None, *, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high`` (ASCII digits only), else ``None``."""
    value = value.strip() if value else ""
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_DIGITS:
        return None
    number = int(value)
    return number if low <= number <= high else None


def integer(value: str | None, *, default: int, low: int, high: int, what: str, problems: list[str]) -> int:
    """``whole`` with a default when the parameter is absent; a bad one is added to ``problems``."""
    if value is None or not value.strip():
        return default
    number = whole(value, low=low, high=high)
    if number is None:
        problems.append(f"Invalid {what} {value[:40]!r}: expected a whole number from {low} to {high:,}.")
        return default
    return number


def http_status(value: str) -> int | None:
    """An HTTP status code (100-599)."""
    return whole(value, low=100, high=599)


def identifier(value: str) -> uuid.UUID | None:
    """A UUID: a request's or a conversation's id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def moment(value: str) -> datetime | None:
    """``2026-11-23T10:00`` (a ``datetime-local`` field) or any ISO 8601 timestamp; UTC when it
    has no offset."""
    value = value.strip()
    if len(value) > _MAX_MOMENT:
        return None
    try:
        found = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def moment_text(found: datetime) -> str:
    """As a ``datetime-local`` field shows it: UTC without the offset, seconds only when set."""
    shown = found.astimezone(UTC).replace(tzinfo=None)
    return shown.isoformat(timespec="auto" if shown.second or shown.microsecond else "minutes")


def wants_fragment(request: Request[Any, Any, Any]) -> bool:
    """An htmx swap wants the results only; htmx restoring a page from its history wants all of it."""
    headers = request.headers
    return bool(headers.get("hx-request")) and not headers.get("hx-history-restore-request")
