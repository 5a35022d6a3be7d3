"""The dashboard's usage page through the running proxy, signed in as a browser: accounts and
their 5-hour windows, daily and hourly charts, cost allocation, and the exports of each."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from anthropic import Anthropic
from markupsafe import escape

from nexus.entrypoints.dashboard.formatting import money, number
from tests.integration.conftest import sdk
from tests.integration.test_api_usage import (
    TEAM_TOKEN,
    Sent,
    insert_past_exchange,
    oauth_credential,
    past,
    write_credential,
)
from tests.support.dashboard import sign_in
from tests.support.database import query, rebuild_usage_hourly, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-tests"
LIMITS = {"five_hour_output_tokens": 1_000, "five_hour_cost_usd": 100.0}
FORMULA_DOMAIN = "=cmd()|'/C calc'!A0<b>"
FORMULA_ACCOUNT = "+acc=1"
TOTAL_FIELDS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
)
_VOID = {"br", "input", "meta", "link", "img", "hr", "col", "wbr", "source"}


class _Tables(HTMLParser):
    """Every table's body rows as cell texts, keyed by the ``data-*`` attributes around it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[dict[str, str | None]] = []
        self.tables: list[tuple[dict[str, str | None], list[list[str]]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag == "br" and self._cell is not None:
                self._cell.append(" ")
            return
        self.stack.append({"tag": tag, **dict(attrs)})
        if tag == "table":
            marks = {k: v for element in self.stack for k, v in element.items() if k.startswith("data-")}
            self.tables.append((marks, []))
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag in {"td", "th"} and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack and self.stack.pop()["tag"] != tag:
            pass
        if tag in {"td", "th"} and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> list[tuple[dict[str, str | None], list[list[str]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def table(html: str, **marks: str) -> list[list[str]]:
    wanted = {f"data-{name}": value for name, value in marks.items()}
    [rows] = [rows for found, rows in tables(html) if wanted.items() <= found.items()]
    return rows


def chart(html: str, name: str) -> dict[str, Any]:
    match = re.search(r"data-chart='([^']*)' data-chart-name=\"" + name + '"', html)
    assert match, f"the {name} chart is on the page"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def sums(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    chosen = list(rows)
    return {
        "requests": len(chosen),
        **{
            name: sum(row[name] or 0 for row in chosen)
            for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        },
        "cost_usd": sum((row["cost_usd"] or Decimal(0) for row in chosen), Decimal(0)),
    }


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def as_csv_cell(value: object) -> str:
    """A JSON export value as the CSV export writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = "; ".join(str(item) for item in value)
    text = str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def exported(
    browser: httpx.Client, section: str, **params: str | int
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The JSON and CSV exports of a section, checked for their headers and agreement."""
    as_json = browser.get("/dashboard/usage/export", params={"section": section, "format": "json", **params})
    as_csv = browser.get("/dashboard/usage/export", params={"section": section, "format": "csv", **params})
    assert (as_json.status_code, as_csv.status_code) == (200, 200), (as_json.text, as_csv.text)
    assert as_json.headers["content-type"] == "application/json"
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    for response, extension in ((as_json, "json"), (as_csv, "csv")):
        disposition = response.headers["content-disposition"]
        assert re.fullmatch(rf'attachment; filename="usage-{section}[A-Za-z0-9._-]*\.{extension}"', disposition)
    rows = as_json.json()
    table_rows = csv_rows(as_csv.text)
    assert as_csv.text.splitlines()[0].split(",")[0] in {"account_id", "date", "dimension"}, "a header row"
    assert table_rows == [{name: as_csv_cell(value) for name, value in row.items()} for row in rows]
    return rows, table_rows


@pytest.fixture
def usage_proxy(
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    fake: FakeAnthropic,
    credentials_dir: Path,
) -> RunningProxy:
    """acc_team: an OAuth subscription on team.example (with limits) and an API key on ci.example."""
    fake.oauth_tokens[TEAM_TOKEN] = float("inf")
    write_credential(credentials_dir, "team.example", oauth_credential("acc_team", TEAM_TOKEN, limits=LIMITS))
    write_credential(
        credentials_dir, "ci.example", {"type": "api_key", "accountId": "acc_team", "api_key": DEFAULT_API_KEY}
    )
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def record_traffic(proxy: RunningProxy, fake: FakeAnthropic, database_url: str) -> list[dict[str, Any]]:
    """Requests through the proxy, rows as if recorded hours and days ago; every stored row."""

    def ask(client: Anthropic, model: str = "claude-sonnet-5") -> None:
        client.messages.create(model=model, max_tokens=32, messages=[{"role": "user", "content": "hi"}])

    team = sdk(proxy.url, default_headers={"host": "team.example"})
    ask(team)
    ask(team, "claude-haiku-4-5")
    ask(sdk(proxy.url, default_headers={"host": "ci.example"}))
    ask(sdk(proxy.url))
    wait_for_rows(database_url, 4)
    fake.unified_status = "allowed_warning"
    ask(team)
    wait_for_rows(database_url, 5)
    now = datetime.now(UTC)
    for entry in (
        past(now - timedelta(hours=4), 1_000, "0.500000000"),
        past(now - timedelta(hours=6, minutes=1), 2_000, "1.000000000"),
        past(now - timedelta(days=3), 4_000, "2.000000000"),
    ):
        insert_past_exchange(database_url, entry, "acc_team")
    formula = past(now - timedelta(hours=1), 300, "0.250000000")
    formula = Sent(str(uuid.uuid4()), FORMULA_DOMAIN, formula.model, formula.usage, formula.cost, formula.ts)
    insert_past_exchange(database_url, formula, FORMULA_ACCOUNT)
    for n in (1, 2, 3):  # seven domains in 24 hours: the quietest goes into "other"
        bulk = past(now - timedelta(hours=10), 50 * n, "0.010000000")
        bulk = Sent(bulk.id, f"d{n}.example", bulk.model, bulk.usage, bulk.cost, bulk.ts)
        insert_past_exchange(database_url, bulk, "acc_bulk")
    rebuild_usage_hourly(database_url)  # the rows inserted here, beside those the proxy recorded
    return query(
        database_url,
        """SELECT ts, domain, account_id, coalesce(model, model_requested) AS model, input_tokens, output_tokens,
                  cache_creation_input_tokens, cache_read_input_tokens, cost_usd FROM exchanges ORDER BY ts""",
    )


def daily_lines(days: list[tuple[date, int]]) -> list[str]:
    """The first cell of each line of the daily table, for days (oldest first) and their requests."""
    lines: list[str] = []
    quiet: list[date] = []
    for position in range(len(days) - 1, -1, -1):
        day, requests = days[position]
        if requests:
            lines.append(day.isoformat())
            continue
        quiet.insert(0, day)
        if position == 0 or days[position - 1][1]:
            first, last = quiet[0].isoformat(), quiet[-1].isoformat()
            lines.append(
                f"{last}: no traffic"
                if len(quiet) == 1
                else f"{len(quiet)} days without traffic ({first} \u2013 {last})"
            )
            quiet = []
    return lines


def test_usage_page_shows_windows_history_and_allocation_and_exports_exactly_its_rows(
    usage_proxy: RunningProxy, fake: FakeAnthropic, database_url: str
) -> None:
    rows = record_traffic(usage_proxy, fake, database_url)
    solo = f"127.0.0.1:{usage_proxy.port}"
    browser = sign_in(usage_proxy.url, KEY)

    page = browser.get("/dashboard/usage", params={"account": "acc_team", "days": "7", "period": "24h"})
    assert page.status_code == 200, page.text
    html = page.text
    assert "<script>" not in html, "no inline script for the CSP to block"
    assert " style=" not in html, "no inline style for the CSP to block"
    now = datetime.now(UTC)

    # Accounts: the ledger over the trailing 5 hours, the limits, Anthropic's view, warnings.
    five_hours = [row for row in rows if row["ts"] >= now - timedelta(hours=5)]
    accounts = {cells[0]: cells for cells in table(html, section="accounts")}
    assert set(accounts) == {"acc_team", solo, FORMULA_ACCOUNT}
    team = sums(row for row in five_hours if row["account_id"] == "acc_team")
    cells = accounts["acc_team"]
    assert cells[1].split() == ["ci.example", "team.example"]
    assert cells[2:5] == [
        number(team["requests"]),
        f"{number(team['input_tokens'])} / {number(team['output_tokens'])}",
        money(team["cost_usd"]),
    ]
    percent = round(team["output_tokens"] / 1_000 * 100, 2)
    assert f"5 h output tokens {percent} % {number(team['output_tokens'])} / 1,000 ({percent} %)" in cells[5]
    cost_percent = round(round(float(team["cost_usd"]), 6) / 100 * 100, 2)
    used = money(round(float(team["cost_usd"]), 6))  # the limit's measure: the ledger's cost to 6 decimals
    assert f"5 h cost {cost_percent} % {used} / $100.00 ({cost_percent} %)" in cells[5]
    assert cells[6].startswith("allowed_warning seen ")
    assert cells[7].startswith("5 % 5 % · allowed_warning resets 2026-10-01 00:30:00 UTC")
    assert cells[8].startswith("18 % 18 % · allowed resets 2026-10-06 00:00:00 UTC")
    assert cells[9] == "5 h output tokens over limit allowed_warning"
    meter = re.search(r'data-limit="five_hour_output_tokens">.*?<meter ([^>]*)>', html, re.DOTALL)
    assert meter, "a meter shows the share of the limit"
    assert f'value="{percent}"' in meter.group(1)
    assert 'max="100"' in meter.group(1)
    assert '<span class="badge error">5 h output tokens over limit</span>' in html
    assert '<span class="badge warn">allowed_warning</span>' in html
    solo_cells = accounts[solo]
    assert solo_cells[5] == "No limit set"
    assert solo_cells[6].startswith("No unified rate-limit headers seen")
    assert accounts[FORMULA_ACCOUNT][1] == FORMULA_DOMAIN
    assert str(escape(FORMULA_DOMAIN)) in html, "escaped"
    assert FORMULA_DOMAIN not in html, "never raw"

    account_rows, account_csv = exported(browser, "accounts", account="acc_team", days=7, period="24h")
    assert [row["account_id"] for row in account_rows] == [cells[0] for cells in table(html, section="accounts")]
    [team_row] = [row for row in account_rows if row["account_id"] == "acc_team"]
    assert {name: team_row[name] for name in TOTAL_FIELDS} == {**team, "cost_usd": team_row["cost_usd"]}
    assert Decimal(team_row["cost_usd"]) == team["cost_usd"]
    assert team_row["domains"] == ["ci.example", "team.example"]
    assert (team_row["five_hour_output_tokens_limit"], team_row["five_hour_output_tokens_used"]) == (
        1_000,
        team["output_tokens"],
    )
    assert team_row["five_hour_output_tokens_percent"] == percent
    assert team_row["seven_day_output_tokens_limit"] is None
    assert (team_row["anthropic_status"], team_row["anthropic_5h_utilization"]) == ("allowed_warning", 0.05)
    assert team_row["anthropic_5h_resets_at"] == "2026-10-01T00:30:00Z"
    assert team_row["warnings"] == ["5 h output tokens over limit", "allowed_warning"]
    [formula_csv] = [row for row in account_csv if row["account_id"] == "'" + FORMULA_ACCOUNT]
    assert formula_csv["domains"] == "'" + FORMULA_DOMAIN

    # Daily history of the selected account, chart and table, and its export.
    today = now.date()
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    per_day = {day: sums(r for r in rows if r["account_id"] == "acc_team" and r["ts"].date() == day) for day in days}
    daily_chart = chart(html, "daily")
    assert daily_chart["type"] == "bar"
    assert daily_chart["labels"] == [day.isoformat() for day in days]
    assert daily_chart["series"] == [
        {"label": "Input", "data": [per_day[day]["input_tokens"] for day in days]},
        {"label": "Output", "data": [per_day[day]["output_tokens"] for day in days]},
    ]
    assert sum(daily_chart["series"][1]["data"]) == sum(
        r["output_tokens"] for r in rows if r["account_id"] == "acc_team"
    )
    # The table: newest first, each run of days without traffic one line.
    lines = daily_lines([(day, per_day[day]["requests"]) for day in days])
    daily_table = table(html, table="daily")
    assert [cells[0] for cells in daily_table] == lines
    assert any("without traffic" in line or "no traffic" in line for line in lines), "the traffic leaves quiet days"
    assert any(sum(per_day[day]["requests"] for day in days[n : n + 2]) == 0 for n in range(6)), "and a run of them"
    shown_days = {cells[0]: cells for cells in daily_table if len(cells) == 7}
    assert set(shown_days) == {day.isoformat() for day in days if per_day[day]["requests"]}
    for shown_day, cells in shown_days.items():
        expected = per_day[date.fromisoformat(shown_day)]
        assert cells[1:4] == [number(expected[n]) for n in ("requests", "input_tokens", "output_tokens")]
        assert cells[6] == money(expected["cost_usd"])
    daily_rows, _ = exported(browser, "daily", account="acc_team", days=7, period="24h")
    assert [row["date"] for row in daily_rows] == [day.isoformat() for day in days]
    for row, day in zip(daily_rows, days, strict=True):
        assert {**row, "cost_usd": Decimal(row["cost_usd"])} == {"date": day.isoformat(), **per_day[day]}

    # Tokens per hour by domain over the last 24 hours.
    hourly = chart(html, "hourly")
    labels = hourly["labels"]
    assert len(labels) == 24
    assert labels[-1] == now.strftime("%m-%d %H:00") or labels[-1] == (now - timedelta(hours=1)).strftime("%m-%d %H:00")
    expected_hourly: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        label = row["ts"].astimezone(UTC).strftime("%m-%d %H:00")
        if label in labels and row["ts"] >= now - timedelta(hours=25):
            expected_hourly[row["domain"]][label] += (row["input_tokens"] or 0) + (row["output_tokens"] or 0)
    requests_per_domain: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["ts"] >= now - timedelta(hours=23):
            requests_per_domain[row["domain"]] += 1
    ranked = sorted(requests_per_domain, key=lambda name: (-requests_per_domain[name], name))
    busiest, rest = ranked[:6], ranked[6:]
    assert rest == ["d3.example"]
    assert [series["label"] for series in hourly["series"]] == [*busiest, "other"]
    for series in hourly["series"]:
        members = rest if series["label"] == "other" else [series["label"]]
        expected_data = [sum(expected_hourly[name][label] for name in members) for label in labels]
        assert series["data"] == expected_data, series["label"]

    # Cost allocation for the period, by domain, account and model.
    day_rows = [row for row in rows if row["ts"] >= now - timedelta(hours=24)]
    total_cost = sums(day_rows)["cost_usd"]
    allocation_rows, allocation_csv = exported(browser, "allocation", account="acc_team", days=7, period="24h")
    for dimension, key, heading in (
        ("domain", "domain", "domain"),
        ("account", "account_id", "account"),
        ("model", "model", "model"),
    ):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in day_rows:
            groups[row[key]].append(row)
        expected = {name: sums(members) for name, members in groups.items()}
        shown = {cells[0]: cells for cells in table(html, allocation=heading)}
        assert set(shown) == set(expected), dimension
        for name, values in expected.items():
            share = f"{float(values['cost_usd'] / total_cost * 100):.1f} %"
            assert shown[name][1:] == [
                money(values["cost_usd"]),
                share,
                number(values["requests"]),
                number(values["input_tokens"]),
                number(values["output_tokens"]),
                number(values["cache_creation_input_tokens"]),
                number(values["cache_read_input_tokens"]),
            ], (dimension, name)
        got = [row for row in allocation_rows if row["dimension"] == dimension]
        assert [row["name"] for row in got] == [cells[0] for cells in table(html, allocation=heading)]
        assert {
            row["name"]: {**{n: row[n] for n in TOTAL_FIELDS}, "cost_usd": Decimal(row["cost_usd"])} for row in got
        } == expected
        for row in got:
            assert row["cost_share_percent"] == round(float(Decimal(row["cost_usd"]) / total_cost * 100), 1)
    assert [(row["dimension"], row["name"]) for row in allocation_csv if row["name"].startswith("'")] == [
        ("domain", "'" + FORMULA_DOMAIN),
        ("account", "'" + FORMULA_ACCOUNT),
    ]

    # Without an account, the first one listed; the domain filter narrows every section.
    first = browser.get("/dashboard/usage").text
    first_account = table(first, section="accounts")[0][0]
    selected = re.search(r'<option value="([^"]*)" selected>', first)
    assert selected, "an account is selected"
    assert selected.group(1) == str(escape(first_account)), "the first one listed"
    default_rows, _ = exported(browser, "daily")
    assert len(default_rows) == 30
    assert sum(row["requests"] for row in default_rows) == sum(1 for r in rows if r["account_id"] == first_account)
    ci = browser.get("/dashboard/usage", params={"domain": "ci.example"}).text
    assert [cells[0] for cells in table(ci, section="accounts")] == ["acc_team"]
    assert [cells[0] for cells in table(ci, allocation="domain")] == ["ci.example"]
    assert [series["label"] for series in chart(ci, "hourly")["series"]] == ["ci.example"]
    ci_daily = chart(ci, "daily")["series"][1]["data"]
    assert sum(ci_daily) == sum(r["output_tokens"] for r in rows if r["domain"] == "ci.example")


def test_usage_page_degrades_without_storage_or_database(
    start_proxy: Callable[..., RunningProxy], tmp_path: Path
) -> None:
    without_storage = start_proxy(DASHBOARD_API_KEY=KEY, NEXUS_DATA_DIR=str(tmp_path / "off"))
    browser = sign_in(without_storage.url, KEY)
    page = browser.get("/dashboard/usage")
    assert page.status_code == 200
    assert "Usage is unavailable: storage is off" in page.text
    assert "Nothing can be read" in page.text
    for section in ("accounts", "daily", "allocation"):
        export = browser.get("/dashboard/usage/export", params={"section": section, "format": "csv"})
        assert export.status_code == 503, section
        assert export.text.startswith("Usage is unavailable")

    unreachable = start_proxy(
        DASHBOARD_API_KEY=KEY,
        NEXUS_DATA_DIR=str(tmp_path / "down"),
        DATABASE_URL="postgresql://nexus@127.0.0.1:9/nexus",
    )
    browser = sign_in(unreachable.url, KEY)
    page = browser.get("/dashboard/usage", params={"account": "acc_team"})
    assert page.status_code == 200
    assert "Usage is unavailable: the database cannot be reached" in page.text
    assert "Nothing can be read" in page.text
    export = browser.get("/dashboard/usage/export", params={"section": "daily", "account": "acc_team"})
    assert export.status_code == 503


def test_usage_export_needs_a_session_and_a_known_section(usage_proxy: RunningProxy) -> None:
    anonymous = httpx.get(f"{usage_proxy.url}/dashboard/usage/export", params={"section": "accounts"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/dashboard/login")
    browser = sign_in(usage_proxy.url, KEY)
    assert browser.get("/dashboard/usage/export", params={"section": "secrets"}).status_code == 400
    assert browser.get("/dashboard/usage/export", params={"section": "daily", "format": "xml"}).status_code == 400
    empty = browser.get("/dashboard/usage/export", params={"section": "accounts"})
    assert empty.status_code == 200
    assert empty.text.splitlines() == [empty.text.splitlines()[0]], "only the header row"
    assert empty.text.startswith("account_id,domains,requests,")
