"""Token accounting through the running proxy: per-account usage in SQL, Anthropic's unified
rate-limit view, limits from the credential files, ``/token-stats`` and the console report."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.exchange import Exchange
from nexus.application.recording.row import build_row
from nexus.domain.pricing import cost_usd
from nexus.domain.usage import TokenUsage
from tests.integration.conftest import sdk
from tests.support.database import query, wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-tests"
TEAM_TOKEN = "sk-ant-oat01-team-access-token"
NEVER_MS = 4_102_444_800_000  # 2100-01-01
LIMITS = {"five_hour_output_tokens": 5_000, "five_hour_cost_usd": 2.5, "seven_day_output_tokens": 50_000}
CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]
CACHED_SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "Long instructions. " * 200, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
]
CI_SYSTEM = [  # default 5 min cache
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "CI rules. " * 100, "cache_control": {"type": "ephemeral"}},
]
NANO = Decimal("1e-9")


@dataclass
class Sent:
    """One request as the client saw it, and when the proxy recorded it."""

    id: str
    domain: str
    model: str
    usage: TokenUsage | None
    cost: Decimal
    ts: datetime | None = None


def write_credential(directory: Path, name: str, document: dict[str, Any]) -> None:
    (directory / f"{name}.credentials.json").write_text(json.dumps(document))


def oauth_credential(account_id: str, token: str, **extra: Any) -> dict[str, Any]:
    oauth = {
        "accessToken": token,
        "refreshToken": "sk-ant-ort01-r",
        "expiresAt": NEVER_MS,
        "scopes": ["user:inference"],
    }
    return {"type": "oauth", "accountId": account_id, "oauth": oauth, **extra}


def api(proxy: RunningProxy, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{proxy.url}{path}", params=params, headers={"x-api-key": KEY}, timeout=10)  # type: ignore[arg-type]


def usage_of(message: Any) -> TokenUsage:
    usage = message.usage
    split = usage.cache_creation
    return TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_5m_input_tokens=split.ephemeral_5m_input_tokens if split else None,
        cache_creation_1h_input_tokens=split.ephemeral_1h_input_tokens if split else None,
    )


def sent_message(client: Any, domain: str, **create: Any) -> Sent:
    """A non-streaming call; its usage and cost as the SDK reports them."""
    raw = client.messages.with_raw_response.create(max_tokens=64, **create)
    message = raw.parse()
    usage = usage_of(message)
    return Sent(raw.headers["x-request-id"], domain, message.model, usage, cost_usd(message.model, usage) or Decimal(0))


def sent_stream(client: Any, domain: str, **create: Any) -> Sent:
    with client.messages.stream(max_tokens=64, **create) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    usage = usage_of(message)
    return Sent(request_id, domain, message.model, usage, cost_usd(message.model, usage) or Decimal(0))


def totals(entries: Iterable[Sent]) -> dict[str, Any]:
    """What the API must answer for these requests, from what the SDK was told."""
    chosen = list(entries)
    used = [entry.usage for entry in chosen if entry.usage is not None]
    return {
        "requests": len(chosen),
        "input_tokens": sum(u.input_tokens for u in used),
        "output_tokens": sum(u.output_tokens for u in used),
        "cache_creation_input_tokens": sum(u.cache_creation_input_tokens for u in used),
        "cache_read_input_tokens": sum(u.cache_read_input_tokens for u in used),
        "cost_usd": format(sum((entry.cost for entry in chosen), Decimal(0)).quantize(NANO), "f"),
        "unpriced_requests": 0,
    }


def insert_past_exchange(url: str, entry: Sent, account_id: str) -> None:
    """A row as the recorder would have written it at ``entry.ts`` (the proxy cannot be run
    hours ago)."""
    usage = entry.usage or TokenUsage()
    query(
        url,
        """INSERT INTO exchanges (id, ts, domain, account_id, method, path, status, state, stream, duration_ms,
               tool_call_count, is_subtask, model, input_tokens, output_tokens, cache_creation_input_tokens,
               cache_read_input_tokens, cost_usd)
           VALUES ($1, $2, $3, $4, 'POST', '/v1/messages', 200, 'complete', false, 100, 0, false, $5, $6, $7, $8,
                   $9, $10)""",
        uuid.UUID(entry.id), entry.ts, entry.domain, account_id, entry.model, usage.input_tokens,
        usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens, entry.cost,
    )  # fmt: skip


def past(ts: datetime, output_tokens: int, cost: str, *, input_tokens: int = 100) -> Sent:
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_input_tokens=7)
    return Sent(str(uuid.uuid4()), "team.example", "claude-sonnet-5", usage, Decimal(cost), ts)


def floor(instant: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((instant - epoch) // step) * step


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def team_credentials(fake: FakeAnthropic, credentials_dir: Path) -> None:
    """acc_team: an OAuth subscription on team.example (with limits) and an API key on ci.example."""
    fake.oauth_tokens[TEAM_TOKEN] = float("inf")
    write_credential(credentials_dir, "team.example", oauth_credential("acc_team", TEAM_TOKEN, limits=LIMITS))
    write_credential(
        credentials_dir, "ci.example", {"type": "api_key", "accountId": "acc_team", "api_key": DEFAULT_API_KEY}
    )


@pytest.fixture
def usage_proxy(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path, team_credentials: None
) -> RunningProxy:
    return start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)


def test_windows_days_series_limits_and_accounts_add_up_to_what_the_sdk_was_told(
    usage_proxy: RunningProxy, database_url: str
) -> None:
    team = sdk(usage_proxy.url, default_headers={"host": "team.example"})
    ci = sdk(usage_proxy.url, default_headers={"host": "ci.example"})
    solo_domain = f"127.0.0.1:{usage_proxy.port}"
    sent = [
        sent_message(team, "team.example", model="claude-sonnet-5", system=CLAUDE_CODE_SYSTEM,
                     messages=[{"role": "user", "content": "hi"}]),
        sent_stream(team, "team.example", model="claude-sonnet-5", system=CACHED_SYSTEM,
                    messages=[{"role": "user", "content": "Read the config"}],
                    extra_headers={SCENARIO_HEADER: "tool_use"}),
        sent_message(team, "team.example", model="claude-haiku-4-5", messages=[{"role": "user", "content": "title?"}]),
        sent_message(ci, "ci.example", model="claude-opus-5", system=CI_SYSTEM,
                     messages=[{"role": "user", "content": "run"}]),
    ]  # fmt: skip
    limited = httpx.post(
        f"{usage_proxy.url}/v1/messages",
        json={"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        headers={"host": "ci.example", "anthropic-version": "2023-06-01", SCENARIO_HEADER: "error:429"},
    )
    assert limited.status_code == 429
    sent.append(Sent(limited.headers["x-request-id"], "ci.example", "claude-sonnet-5", None, Decimal(0)))
    solo = sent_message(
        sdk(usage_proxy.url), solo_domain, model="claude-sonnet-5", messages=[{"role": "user", "content": "hey"}]
    )
    assert any(entry.usage and entry.usage.cache_creation_1h_input_tokens for entry in sent), "1 h cache writes"
    assert any(entry.usage and entry.usage.cache_creation_5m_input_tokens for entry in sent), "5 min cache writes"
    assert any(entry.usage and entry.usage.cache_read_input_tokens for entry in sent), "cache reads"

    rows = wait_for_rows(database_url, len(sent) + 1)
    stamps = {str(row["id"]): row["ts"] for row in rows}
    for entry in [*sent, solo]:
        entry.ts = stamps[entry.id]
    assert {row["account_id"] for row in rows} == {"acc_team", solo_domain}
    now = datetime.now(UTC)
    four_hours_ago = past(now - timedelta(hours=4), 1_000, "0.500000000")
    six_hours_ago = past(now - timedelta(hours=6, minutes=1), 2_000, "1.000000000")
    three_days_ago = past(now - timedelta(days=3), 4_000, "2.000000000")
    earlier = [four_hours_ago, six_hours_ago, three_days_ago]
    for entry in earlier:
        insert_past_exchange(database_url, entry, "acc_team")
    everything = sent + earlier
    five_hours = [*sent, four_hours_ago]

    # The trailing window, with filters.
    current = api(usage_proxy, "/api/usage/current", account_id="acc_team").json()
    assert current["totals"] == totals(five_hours)
    assert current["window"]["minutes"] == 300
    assert instant(current["window"]["end"]) - instant(current["window"]["start"]) == timedelta(minutes=300)
    assert current["account_id"] == "acc_team"
    short = api(usage_proxy, "/api/usage/current", account_id="acc_team", window_minutes=30).json()
    assert short["totals"] == totals(sent)
    by_domain = api(usage_proxy, "/api/usage/current", account_id="acc_team", domain="ci.example").json()
    assert by_domain["totals"] == totals(e for e in sent if e.domain == "ci.example")
    assert by_domain["domain"] == "ci.example"
    haiku = api(usage_proxy, "/api/usage/current", account_id="acc_team", model="claude-haiku-4-5").json()
    assert haiku["totals"] == totals([sent[2]]), "the alias requested matches the dated model answered"
    assert api(usage_proxy, "/api/usage/current", account_id="acc_nobody").json()["totals"] == totals([])

    # Days: 30 UTC days, today last, days without traffic are zeros.
    daily = api(usage_proxy, "/api/usage/daily", account_id="acc_team", days=30).json()["daily"]
    today = now.date()
    assert [entry["date"] for entry in daily] == [str(today - timedelta(days=n)) for n in range(29, -1, -1)]
    for entry in daily:
        day = date.fromisoformat(entry["date"])
        assert entry["totals"] == totals(e for e in everything if e.ts is not None and e.ts.date() == day), day
    assert sum(entry["totals"]["requests"] for entry in daily) == len(everything)

    # Series: hour buckets aligned on the epoch, from the one holding now - 5 h to the one holding now.
    series = api(usage_proxy, "/api/usage/series", account_id="acc_team", window_hours=5, interval_minutes=60).json()
    hour = timedelta(hours=1)
    buckets = series["buckets"]
    starts = [instant(bucket["start"]) for bucket in buckets]
    assert starts[0] == floor(instant(series["window"]["end"]) - timedelta(hours=5), hour)
    assert starts == [starts[0] + n * hour for n in range(len(buckets))]
    assert len(buckets) == 6
    assert all(instant(bucket["end"]) - instant(bucket["start"]) == hour for bucket in buckets)
    for bucket, start in zip(buckets, starts, strict=True):
        inside = [e for e in everything if e.ts is not None and start <= e.ts < start + hour]
        assert bucket["totals"] == totals(inside), start
    assert sum(bucket["totals"]["requests"] for bucket in buckets) == len(five_hours), "6 h ago is outside"
    fine = api(usage_proxy, "/api/usage/series", account_id="acc_team").json()
    assert fine["interval_minutes"] == 5
    assert len(fine["buckets"]) == 61
    assert sum(bucket["totals"]["output_tokens"] for bucket in fine["buckets"]) == totals(five_hours)["output_tokens"]

    # Accounts: totals, domains, limits with the share used, and Anthropic's view.
    accounts = {entry["account_id"]: entry for entry in api(usage_proxy, "/api/usage/accounts").json()["accounts"]}
    assert set(accounts) == {"acc_team", solo_domain}
    team_usage = accounts["acc_team"]
    assert team_usage["totals"] == totals(five_hours)
    assert {d["domain"]: d["totals"] for d in team_usage["domains"]} == {
        "team.example": totals(e for e in five_hours if e.domain == "team.example"),
        "ci.example": totals(e for e in five_hours if e.domain == "ci.example"),
    }
    five_hour_output = totals(five_hours)["output_tokens"]
    five_hour_cost = float(totals(five_hours)["cost_usd"])
    seven_day_output = totals(everything)["output_tokens"]
    limits = team_usage["limits"]
    assert set(limits) == set(LIMITS)
    assert limits["five_hour_output_tokens"] == {
        "window_minutes": 300,
        "limit": 5_000,
        "used": five_hour_output,
        "remaining": max(5_000 - five_hour_output, 0),
        "percentage_used": round(five_hour_output / 5_000 * 100, 2),
    }
    assert limits["five_hour_cost_usd"]["used"] == pytest.approx(five_hour_cost)
    assert limits["five_hour_cost_usd"]["percentage_used"] == pytest.approx(five_hour_cost / 2.5 * 100, abs=0.01)
    assert limits["seven_day_output_tokens"]["window_minutes"] == 7 * 24 * 60
    assert limits["seven_day_output_tokens"]["used"] == seven_day_output, "the 6 h and 3 day old rows count"
    assert limits["seven_day_output_tokens"]["percentage_used"] == round(seven_day_output / 50_000 * 100, 2)
    anthropic = team_usage["anthropic"]
    assert anthropic["status"] == "allowed"
    assert anthropic["domain"] == "team.example", "only OAuth answers carry the unified headers"
    assert anthropic["request_id"] == sent[2].id, "the latest OAuth answer"
    assert anthropic["resets_at"] == "2026-10-01T00:30:00Z"
    assert anthropic["representative_claim"] == "five_hour"
    assert anthropic["five_hour"] == {"status": "allowed", "utilization": 0.05, "resets_at": "2026-10-01T00:30:00Z"}
    assert anthropic["seven_day"] == {"status": "allowed", "utilization": 0.18, "resets_at": "2026-10-06T00:00:00Z"}
    assert anthropic["overage_status"] == "rejected"
    assert anthropic["headers"]["fallback-percentage"] == "0.5"
    assert accounts[solo_domain]["totals"] == totals([solo])
    assert accounts[solo_domain]["limits"] == {}
    assert accounts[solo_domain]["anthropic"] is None, "API-key traffic has no unified view"
    assert current["anthropic"] == anthropic

    # The in-memory counters saw the same requests (not the rows inserted by hand).
    def token_stats() -> dict[str, Any]:
        return api(usage_proxy, "/token-stats").json()["domains"]  # type: ignore[no-any-return]

    wait_until(lambda: sum(domain["requests"] for domain in token_stats().values()) == len(sent) + 1)
    stats = token_stats()
    for domain in ("team.example", "ci.example"):
        expected = totals(e for e in sent if e.domain == domain)
        got = stats[domain]
        assert {name: got[name] for name in expected if name != "unpriced_requests"} == {
            name: value for name, value in expected.items() if name != "unpriced_requests"
        }
    assert (stats["team.example"]["inference"], stats["team.example"]["query_evaluation"]) == (2, 1)
    assert stats["team.example"]["tool_calls"] == 1
    assert stats["ci.example"]["errors"] == 1
    assert stats[solo_domain]["output_tokens"] == totals([solo])["output_tokens"]
    only = api(usage_proxy, "/token-stats", domain="ci.example").json()["domains"]
    assert list(only) == ["ci.example"]


def test_anthropic_view_is_kept_per_account_and_a_change_to_warning_or_rejected_is_logged_once(
    fake: FakeAnthropic, usage_proxy: RunningProxy, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    team = sdk(usage_proxy.url, default_headers={"host": "team.example"})
    body = {"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "acc_team" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="nexus.application.token_accounting"):
        team.messages.create(**body)  # type: ignore[arg-type]
        wait_for_rows(database_url, 1)
        fake.unified_status = "allowed_warning"
        for _ in range(3):
            team.messages.create(**body)  # type: ignore[arg-type]
        wait_for_rows(database_url, 4)
        wait_until(lambda: len(warnings()) == 1)
        assert warnings()[0].startswith("Anthropic reports account acc_team as allowed_warning")
        view = api(usage_proxy, "/api/usage/current", account_id="acc_team").json()["anthropic"]
        assert (view["status"], view["five_hour"]["status"]) == ("allowed_warning", "allowed_warning")

        with pytest.raises(Exception, match="rate limit"):
            team.messages.create(**body, extra_headers={SCENARIO_HEADER: "error:429"})  # type: ignore[arg-type]
        [*_, rejected_row] = wait_for_rows(database_url, 5)
        wait_until(lambda: len(warnings()) == 2)
        time.sleep(0.3)  # nothing else comes
    assert len(warnings()) == 2
    assert warnings()[1].startswith("Anthropic reports account acc_team as rejected")
    assert "5h 101% used (rejected)" in warnings()[1]

    [stored] = query(database_url, "SELECT * FROM account_rate_limits")
    assert stored["account_id"] == "acc_team"
    assert stored["exchange_id"] == rejected_row["id"]
    assert (stored["status"], stored["five_hour_status"], stored["five_hour_utilization"]) == (
        "rejected",
        "rejected",
        1.01,
    )
    assert stored["status_since"] == stored["seen_at"] == rejected_row["ts"]
    assert json.loads(stored["headers"])["5h-surpassed-threshold"] == "1.0"
    current = api(usage_proxy, "/api/usage/current", account_id="acc_team").json()
    assert current["anthropic"]["status"] == "rejected"
    assert current["anthropic"]["five_hour"]["utilization"] == 1.01
    assert current["anthropic"]["status_since"] == current["anthropic"]["seen_at"]
    [account] = api(usage_proxy, "/api/usage/accounts").json()["accounts"]
    assert account["anthropic"] == current["anthropic"]


async def test_the_store_keeps_only_an_accounts_newest_snapshot(database_url: str) -> None:
    def exchange(minute: int, status: str) -> Exchange:
        return Exchange(
            request_id=str(uuid.uuid4()),
            method="POST",
            path="/v1/messages",
            query_string=b"",
            domain="team.example",
            account_id="acc_team",
            request_headers=[],
            status=200,
            response_headers=[(b"anthropic-ratelimit-unified-status", status.encode())],
            started_at_ms=1_790_000_000_000 + minute * 60_000,
        )

    async with open_engine(database_url) as engine:
        await upgrade(engine)
        store = SqlAlchemyExchangeStore(engine)
        await store.store([build_row(exchange(10, "allowed"), store_bodies=False)])
        await store.store([build_row(exchange(20, "allowed"), store_bodies=False)])
        await store.store([build_row(exchange(5, "rejected"), store_bodies=False)])  # a late replay
        newest = [exchange(30, "allowed_warning"), exchange(25, "rejected")]
        await store.store([build_row(item, store_bodies=False) for item in newest])
        async with engine.connect() as connection:
            [stored] = (await connection.execute(text("SELECT * FROM account_rate_limits"))).mappings().all()
    assert stored["status"] == "allowed_warning"
    assert stored["seen_at"] == datetime.fromtimestamp(1_790_000_000 + 30 * 60, tz=UTC)
    assert stored["status_since"] == stored["seen_at"]


def test_without_storage_token_stats_count_and_the_report_is_logged_only_after_traffic(
    start_proxy: Callable[..., RunningProxy], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="nexus.application.token_accounting"):
        proxy = start_proxy(DASHBOARD_API_KEY=KEY, TOKEN_REPORT_INTERVAL="1")

        def reports() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Token Usage Report")]

        time.sleep(1.3)
        assert reports() == [], "no traffic, no report"
        client = sdk(proxy.url)
        first = client.messages.create(
            model="claude-sonnet-5", max_tokens=16, system=CLAUDE_CODE_SYSTEM,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "hi"}], extra_headers={SCENARIO_HEADER: "tool_use"},
        )  # fmt: skip
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "a title"}]
        ) as stream:
            second = stream.get_final_message()
        assert client.models.list().data
        wait_until(lambda: len(reports()) >= 1, timeout=5)
        time.sleep(1.3)
    assert len(reports()) == 1, "nothing new after the first report"
    domain = f"127.0.0.1:{proxy.port}"
    table = reports()[0].splitlines()
    assert table[2].split()[:4] == ["Domain", "Reqs", "Query", "Infer"]
    input_tokens = first.usage.input_tokens + second.usage.input_tokens
    output_tokens = first.usage.output_tokens + second.usage.output_tokens
    assert table[4].split()[:10] == [
        domain, "3", "1", "1", "1", f"{input_tokens:,}", f"{output_tokens:,}", f"{input_tokens + output_tokens:,}",
        "0", "0",
    ]  # fmt: skip

    stats = api(proxy, "/token-stats").json()
    counted = stats["domains"][domain]
    assert (counted["requests"], counted["inference"], counted["query_evaluation"], counted["tool_calls"]) == (
        3,
        1,
        1,
        1,
    )
    assert counted["input_tokens"] == first.usage.input_tokens + second.usage.input_tokens
    assert counted["output_tokens"] == first.usage.output_tokens + second.usage.output_tokens
    expected_cost = sum((cost_usd(m.model, usage_of(m)) or Decimal(0) for m in (first, second)), Decimal(0))
    assert Decimal(counted["cost_usd"]) == expected_cost
    assert instant(stats["since"]) <= instant(counted["last_updated"]) <= datetime.now(UTC)
    assert api(proxy, "/token-stats", domain="elsewhere.example").json()["domains"] == {}


def test_usage_needs_storage_the_key_and_valid_parameters(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    without_storage = start_proxy(DASHBOARD_API_KEY=KEY)
    off = api(without_storage, "/api/usage/current", account_id="acc_team")
    assert off.status_code == 503
    assert off.json()["error"]["message"].startswith("Usage is unavailable: storage is off")
    assert api(without_storage, "/api/usage/accounts").status_code == 503
    assert httpx.get(f"{without_storage.url}/token-stats").status_code == 401
    assert httpx.get(f"{without_storage.url}/api/usage/accounts").status_code == 401

    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    cases = {
        ("/api/usage/current", ()): "account_id",
        ("/api/usage/current", (("account_id", "a"), ("window_minutes", "abc"))): "window_minutes='abc'",
        ("/api/usage/current", (("account_id", "a"), ("window_minutes", "0"))): "window_minutes='0'",
        ("/api/usage/daily", (("account_id", "a"), ("days", "400"))): "days='400'",
        ("/api/usage/series", (("account_id", "a"), ("interval_minutes", "0"))): "interval_minutes='0'",
        ("/api/usage/series", (("account_id", "a"), ("window_hours", "744"), ("interval_minutes", "1"))): (
            "at most 1000 are served"
        ),
    }
    for (path, params), fragment in cases.items():
        response = api(proxy, path, **dict(params))
        assert response.status_code == 400, (path, params, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert fragment in error["message"], error["message"]
    empty = api(proxy, "/api/usage/accounts")
    assert empty.status_code == 200
    assert empty.json()["accounts"] == []
