"""The dashboard's query-parameter parsers: text in, a value or ``None`` out, never an exception."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from nexus.entrypoints.dashboard.params import (
    MAX_PARAM,
    http_status,
    identifier,
    integer,
    moment,
    moment_text,
    text,
    wants_fragment,
    whole,
)


def test_text_is_stripped_cut_and_none_when_blank() -> None:
    assert text("  team.example ") == "team.example"
    assert text(None) is None
    assert text("") is None
    assert text("   ") is None
    assert text("x" * 300, limit=MAX_PARAM) == "x" * MAX_PARAM
    assert text("x" * 300) == "x" * 300, "without a limit the page refuses long text itself"


@pytest.mark.parametrize(
    ("value", "number"),
    [("7", 7), (" 7 ", 7), ("0", None), ("11", None), ("", None), (None, None), ("-1", None), ("1.5", None)],
)
def test_whole_numbers_in_range(value: str | None, number: int | None) -> None:
    assert whole(value, low=1, high=10) == number


@pytest.mark.parametrize("value", ["²", "١٢", "7" * 5000, "1e3", "0x10"])
def test_digits_python_would_not_read_or_would_read_slowly_are_refused(value: str) -> None:
    assert whole(value, low=0, high=10**30) is None
    assert http_status(value) is None


def test_an_integer_falls_back_to_its_default_and_names_a_bad_value() -> None:
    problems: list[str] = []
    assert integer(None, default=50, low=1, high=200, what="page size", problems=problems) == 50
    assert integer(" ", default=50, low=1, high=200, what="page size", problems=problems) == 50
    assert integer("100", default=50, low=1, high=200, what="page size", problems=problems) == 100
    assert problems == []
    assert integer("500", default=50, low=1, high=200, what="page size", problems=problems) == 50
    assert problems == ["Invalid page size '500': expected a whole number from 1 to 200."]


def test_status_codes_and_ids() -> None:
    assert http_status("529") == 529
    assert http_status("99") is None
    assert http_status("600") is None
    assert http_status("abc") is None
    known = uuid.uuid4()
    assert identifier(str(known)) == known
    assert identifier(str(known).upper()) == known
    assert identifier("not-a-uuid") is None
    assert identifier("") is None


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("2026-11-23T10:00", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),  # a datetime-local field: UTC
        ("2026-11-23 10:00:30", datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)),
        ("2026-11-23T11:00:00+01:00", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("2026-11-23T10:00:00Z", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        (" 2026-11-23 ", datetime(2026, 11, 23, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        ("2026-11-23T10:00" + " " * 100 + "x", None),
    ],
)
def test_moments_are_iso_8601_and_utc_without_an_offset(value: str, found: datetime | None) -> None:
    assert moment(value) == found


def test_a_moment_is_shown_back_as_a_datetime_local_field_shows_it() -> None:
    assert moment_text(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == "2026-11-23T10:00"
    assert moment_text(datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)) == "2026-11-23T10:00:30"
    assert moment_text(datetime(2026, 11, 23, 10, 0, 0, 500, tzinfo=UTC)) == "2026-11-23T10:00:00.000500"
    shown = moment_text(moment("2026-11-23T11:00:00+01:00"))  # type: ignore[arg-type]
    assert shown == "2026-11-23T10:00"
    assert moment(shown) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "read back as the same time"


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, False),
        ({"hx-request": "true"}, True),
        ({"hx-request": "true", "hx-history-restore-request": "true"}, False),
    ],
)
def test_only_an_htmx_swap_wants_the_fragment(headers: dict[str, str], fragment: bool) -> None:
    request: Any = _Request(headers)
    assert wants_fragment(request) is fragment
