"""A domain served by a pool of accounts: new sessions go where there is headroom, a session
stays on its account, and an account that runs out rests while the others take over."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.dashboard import sign_in
from tests.support.database import wait_for_rows
from tests.support.fake_anthropic import OAUTH_BETA, FakeAnthropic
from tests.support.processes import ProxyProcess
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TOKENS = {"acct-a": "sk-ant-oat01-pool-a", "acct-b": "sk-ant-oat01-pool-b", "acct-c": "sk-ant-oat01-pool-c"}
BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def oauth_pool(
    fake: FakeAnthropic, credentials_dir: Path, tokens: dict[str, str], limits: dict[str, int] | None = None
) -> None:
    """``team.example`` served by a pool of the subscriptions ``tokens`` (file name -> access
    token), each with the budget ``limits`` if given."""
    for name, token in tokens.items():
        fake.oauth_tokens[token] = float("inf")
        member = {"type": "oauth", "accountId": f"acc_{name[-1]}", "oauth": {"accessToken": token}}
        (credentials_dir / f"{name}.credentials.json").write_text(
            json.dumps({**member, **({"limits": limits} if limits else {})})
        )
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "pool", "accounts": list(tokens), "client_api_key": "cnp_live_pool_key"})
    )


@pytest.fixture
def pool(fake: FakeAnthropic, credentials_dir: Path, start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    for name, token in TOKENS.items():
        fake.oauth_tokens[token] = float("inf")
        (credentials_dir / f"{name}.credentials.json").write_text(
            json.dumps(
                {
                    "type": "oauth",
                    "accountId": f"acc_{name[-1]}",
                    "oauth": {
                        "accessToken": token,
                        "refreshToken": f"sk-ant-ort01-{name}",
                        "expiresAt": int(time.time() * 1000) + 3_600_000,
                    },
                }
            )
        )
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "pool", "accounts": list(TOKENS), "client_api_key": "cnp_live_pool_key"})
    )
    return start_proxy()


def send(proxy: RunningProxy, session: str) -> httpx.Response:
    headers = {
        "host": "team.example",
        "x-api-key": "cnp_live_pool_key",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": OAUTH_BETA,
        "x-claude-code-session-id": session,
    }
    return httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=headers, timeout=30)


def served_by(fake: FakeAnthropic) -> str:
    token = [r for r in fake.requests if r.path == "/v1/messages"][-1].bearer_token
    return next(name for name, value in TOKENS.items() if value == token)


def test_new_sessions_go_to_the_account_with_the_most_headroom_and_stay(
    pool: RunningProxy, fake: FakeAnthropic
) -> None:
    # Everyone answers once, so the proxy knows each account's window.
    fake.utilization_of.update({TOKENS["acct-a"]: "0.70", TOKENS["acct-b"]: "0.10", TOKENS["acct-c"]: "0.40"})
    for n in range(6):
        assert send(pool, f"warm-{n}").status_code == 200

    assert send(pool, "fresh").status_code == 200

    assert served_by(fake) == "acct-b", "the emptiest window"
    fake.utilization_of[TOKENS["acct-b"]] = "0.90"  # acct-b fills up: new sessions go elsewhere...
    assert send(pool, "fresh").status_code == 200
    assert send(pool, "another").status_code == 200
    assert served_by(fake) == "acct-c"
    assert send(pool, "fresh").status_code == 200
    assert served_by(fake) == "acct-b", "...but a session stays on its account (its prompt cache is there)"


def test_an_account_that_runs_out_rests_and_its_sessions_fail_over(pool: RunningProxy, fake: FakeAnthropic) -> None:
    assert send(pool, "worker-1").status_code == 200
    first = served_by(fake)
    fake.rejected_tokens.add(TOKENS[first])

    answered = send(pool, "worker-1")

    assert answered.status_code == 200, "the request was sent again with another account"
    second = served_by(fake)
    assert second != first
    calls = [r.bearer_token for r in fake.requests if r.path == "/v1/messages"]
    assert calls[-2:] == [TOKENS[first], TOKENS[second]], "one try on the rejected account, then the other"
    assert send(pool, "worker-2").status_code == 200
    assert served_by(fake) != first, "a resting account gets no new sessions"
    assert send(pool, "worker-1").status_code == 200
    assert served_by(fake) == second, "the session stays where it moved"


def test_an_account_past_the_rest_share_gets_no_sessions(pool: RunningProxy, fake: FakeAnthropic) -> None:
    fake.utilization_of.update({token: "0.50" for token in TOKENS.values()})
    for n in range(6):
        send(pool, f"warm-{n}")
    fake.utilization_of[TOKENS["acct-a"]] = "0.96"
    for n in range(30):  # until acct-a has answered with its new figure (the proxy learns it from answers)
        send(pool, f"again-{n}")
        if served_by(fake) == "acct-a":
            break
    assert served_by(fake) == "acct-a"

    used = set()
    for n in range(12):
        assert send(pool, f"new-{n}").status_code == 200
        used.add(served_by(fake))

    assert "acct-a" not in used, "past 95 % of its window it rests"
    assert used == {"acct-b", "acct-c"}, "the near-equal others share the sessions"


def test_every_exchange_records_the_account_that_served_it(
    fake: FakeAnthropic,
    credentials_dir: Path,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
) -> None:
    oauth_pool(fake, credentials_dir, {name: TOKENS[name] for name in ("acct-a", "acct-b")})
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY="k")
    ids = {}
    for n in range(8):
        response = send(proxy, f"s-{n}")
        ids[response.headers["x-request-id"]] = f"acc_{served_by(fake)[-1]}"

    deadline = time.monotonic() + 10
    listed: dict[str, str] = {}
    while len(listed) < len(ids) and time.monotonic() < deadline:
        page = httpx.get(f"{proxy.url}/api/requests", params={"domain": "team.example"}, headers={"x-api-key": "k"})
        listed = {item["request_id"]: item["account_id"] for item in page.json()["requests"]}
        time.sleep(0.05)
    assert listed == ids
    assert set(ids.values()) == {"acc_a", "acc_b"}, "both accounts served"


def test_a_failover_is_recorded_as_an_attempt_of_the_exchange(
    fake: FakeAnthropic,
    credentials_dir: Path,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
) -> None:
    oauth_pool(fake, credentials_dir, {name: TOKENS[name] for name in ("acct-a", "acct-b")})
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY="k")
    assert send(proxy, "moving").status_code == 200
    first = served_by(fake)
    fake.rejected_tokens.add(TOKENS[first])
    fake.fail_next(529, headers={"retry-after": "0"})  # the account failed over to is overloaded once
    moved = send(proxy, "moving")
    assert moved.status_code == 200
    second = served_by(fake)
    assert [r.bearer_token for r in fake.requests if r.path == "/v1/messages"][-3:] == [
        TOKENS[first],
        TOKENS[second],
        TOKENS[second],
    ]

    url = f"{proxy.url}/api/requests/{moved.headers['x-request-id']}"
    deadline = time.monotonic() + 10
    detail = httpx.get(url, headers={"x-api-key": "k"})
    while detail.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
        detail = httpx.get(url, headers={"x-api-key": "k"})
    body = detail.json()
    assert body["account_id"] == f"acc_{second[-1]}"
    failover, retried = body["upstream_attempts"]
    assert (failover["number"], failover["status"], failover["account_id"], failover["circuit"]) == (
        1,
        429,
        f"acc_{first[-1]}",
        "closed",
    )
    assert f"failed over to acc_{second[-1]}" in failover["reason"]
    assert (retried["number"], retried["status"], retried["account_id"], retried["circuit"]) == (
        2,
        529,
        f"acc_{second[-1]}",
        "closed",
    ), "the retry after the failover names the account it went with, numbered after the failover"
    assert (failover["sent"], failover["answered"], retried["sent"], retried["answered"]) == (True, False, True, False)

    client = sign_in(proxy.url, "k")
    try:
        page = client.get(f"/dashboard/requests/{moved.headers['x-request-id']}").text
    finally:
        client.close()
    rows = re.findall(r'<tr data-attempt="(\d)">(.*?)</tr>', page)
    assert [number for number, _ in rows] == ["1", "2"]
    assert f"<code>acc_{first[-1]}</code>" in rows[0][1]
    assert f"<code>acc_{second[-1]}</code>" in rows[1][1]
    assert all(row.endswith('<td data-circuit="closed">closed</td>') for _, row in rows)
    assert "3, circuit closed after the last" in page


def test_a_half_open_probe_that_fails_over_is_one_attempt(
    fake: FakeAnthropic,
    credentials_dir: Path,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
) -> None:
    """The probe's 429 closes the circuit and is not the answer: one entry, the failover's."""
    oauth_pool(fake, credentials_dir, {name: TOKENS[name] for name in ("acct-a", "acct-b")})
    proxy = start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        DASHBOARD_API_KEY="k",
        UPSTREAM_MAX_RETRIES="0",
        CIRCUIT_BREAKER_FAILURES="1",
        CIRCUIT_BREAKER_RESET_SECONDS="0.5",
    )
    fake.fail_next(500)
    assert send(proxy, "probing").status_code == 500  # the circuit opens
    first = served_by(fake)
    fake.rejected_tokens.add(TOKENS[first])
    time.sleep(0.6)
    moved = send(proxy, "probing")
    assert moved.status_code == 200
    assert served_by(fake) != first

    url = f"{proxy.url}/api/requests/{moved.headers['x-request-id']}"
    deadline = time.monotonic() + 10
    detail = httpx.get(url, headers={"x-api-key": "k"})
    while detail.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)
        detail = httpx.get(url, headers={"x-api-key": "k"})
    assert [
        (a["number"], a["status"], a["account_id"], a["circuit"], a["answered"])
        for a in detail.json()["upstream_attempts"]
    ] == [(1, 429, f"acc_{first[-1]}", "closed", False)]


@pytest.mark.parametrize("storage", [True, False], ids=["recorded", "counted-without-storage"])
def test_our_own_count_of_an_accounts_output_steers_new_sessions_away(
    *,
    fake: FakeAnthropic,
    credentials_dir: Path,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
    storage: bool,
) -> None:
    # Both windows look empty to Anthropic's headers (5 % each, the fake's default), but each
    # member's own 5-hour budget is 300 output tokens, and one session spends them on one account.
    oauth_pool(
        fake, credentials_dir, {name: TOKENS[name] for name in ("acct-a", "acct-b")}, {"five_hour_output_tokens": 300}
    )
    recording = {"DATABASE_URL": database_url, "NEXUS_DATA_DIR": str(tmp_path / "data")} if storage else {}
    proxy = start_proxy(**recording)
    spent, sent = 0, 0
    while spent < 200:
        answered = send(proxy, "busy")
        assert answered.status_code == 200
        spent, sent = spent + answered.json()["usage"]["output_tokens"], sent + 1
    busy = served_by(fake)
    assert [r.bearer_token for r in fake.requests if r.path == "/v1/messages"] == [TOKENS[busy]] * sent
    if storage:  # the count is fed as each exchange is recorded, just after its answer
        assert len(wait_for_rows(database_url, sent)) == sent

    served = set()
    for n in range(6):  # 13 output tokens each: the other stays under a third of its budget
        assert send(proxy, f"new-{n}").status_code == 200
        served.add(served_by(fake))

    assert served == {"acct-a", "acct-b"} - {busy}, "two thirds of its own budget used: no new sessions there"


def test_the_usage_page_shows_the_pool_and_who_rests(
    fake: FakeAnthropic, credentials_dir: Path, start_proxy: Callable[..., RunningProxy]
) -> None:
    oauth_pool(fake, credentials_dir, TOKENS)
    proxy = start_proxy(DASHBOARD_API_KEY="pool-dashboard-key")
    fake.utilization_of[TOKENS["acct-b"]] = "0.97"
    for n in range(30):
        send(proxy, f"s-{n}")
        if served_by(fake) == "acct-b":
            break

    page = sign_in(proxy.url, "pool-dashboard-key").get("/dashboard/usage").text

    section = page[page.index('data-section="pools"') :]
    section = section[: section.index("</section>")]
    assert "<code>team.example</code>" in section
    rows = dict(re.findall(r'data-pool-member="([^"]+)">(.*?)</tr>', section, re.S))
    assert set(rows) == set(TOKENS)
    assert "rests" in rows["acct-b"]
    assert "97" in rows["acct-b"]
    assert "in use" in rows["acct-a"]


def test_when_every_account_is_out_the_client_gets_anthropics_429(pool: RunningProxy, fake: FakeAnthropic) -> None:
    fake.rejected_tokens.update(TOKENS.values())

    refused = send(pool, "late")

    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert send(pool, "later").status_code == 429, "still an answer, never a 500"


KEYS = {"key-a": "sk-ant-api03-pool-key-a", "key-b": "sk-ant-api03-pool-key-b", "acct-c": TOKENS["acct-c"]}


def mixed_pool(fake: FakeAnthropic, credentials_dir: Path) -> None:
    """Two API keys and a subscription behind one domain."""
    for name in ("key-a", "key-b"):
        fake.api_keys.add(KEYS[name])
        (credentials_dir / f"{name}.credentials.json").write_text(
            json.dumps({"type": "api_key", "api_key": KEYS[name]})
        )
    fake.oauth_tokens[TOKENS["acct-c"]] = float("inf")
    (credentials_dir / "acct-c.credentials.json").write_text(
        json.dumps({"type": "oauth", "accountId": "acc_c", "oauth": {"accessToken": TOKENS["acct-c"]}})
    )
    (credentials_dir / "team.example.credentials.json").write_text(
        json.dumps({"type": "pool", "accounts": list(KEYS), "client_api_key": "cnp_live_pool_key"})
    )


def served_by_member(fake: FakeAnthropic) -> str:
    last = [r for r in fake.requests if r.path == "/v1/messages"][-1]
    used = last.header("x-api-key") or last.bearer_token
    return next(name for name, value in KEYS.items() if value == used)


def test_api_keys_in_a_pool_are_weighed_by_their_per_minute_buckets(
    fake: FakeAnthropic, credentials_dir: Path, start_proxy: Callable[..., RunningProxy]
) -> None:
    mixed_pool(fake, credentials_dir)
    proxy = start_proxy()
    fake.key_remaining_of.update({KEYS["key-a"]: 0.2, KEYS["key-b"]: 0.7})  # 80 % and 30 % used
    fake.utilization_of[TOKENS["acct-c"]] = "0.55"
    for n in range(9):  # each member answers at least once
        assert send(proxy, f"warm-{n}").status_code == 200

    for n in range(5):
        assert send(proxy, f"new-{n}").status_code == 200
        assert served_by_member(fake) == "key-b", "the key with the most of its tightest bucket left"

    fake.rejected_tokens.add(KEYS["key-b"])
    answered = send(proxy, "new-0")
    assert answered.status_code == 200, "sent again with another member"
    assert served_by_member(fake) == "acct-c", "the next most headroom: 45 % left against key-a's 20 %"
    assert send(proxy, "new-9").status_code == 200
    assert served_by_member(fake) != "key-b", "the key rests (for the 429's retry-after)"


def test_two_workers_send_a_session_to_one_account(fake: FakeAnthropic, credentials_dir: Path, tmp_path: Path) -> None:
    oauth_pool(fake, credentials_dir, TOKENS)
    env = {"CLAUDE_API_BASE_URL": fake.url, "CREDENTIALS_DIR": str(credentials_dir)}
    proxy = ProxyProcess(cwd=tmp_path, env=env, args=("--workers", "2")).wait_ready()
    try:
        accounts: dict[str, set[str]] = {}
        workers: dict[str, set[int]] = {}
        for round_ in range(4):
            for n in range(12):
                session = f"session-{n}"
                with httpx.Client() as fresh:  # a new connection each time: either worker may take it
                    worker = fresh.get(f"{proxy.url}/health").json()["pid"]
                    response = fresh.post(
                        f"{proxy.url}/v1/messages",
                        json=BODY,
                        headers={
                            "host": "team.example",
                            "x-api-key": "cnp_live_pool_key",
                            "anthropic-version": "2023-06-01",
                            "anthropic-beta": OAUTH_BETA,
                            "x-claude-code-session-id": session,
                        },
                        timeout=30,
                    )
                assert response.status_code == 200, (round_, response.text)
                accounts.setdefault(session, set()).add(served_by(fake))
                workers.setdefault(session, set()).add(worker)
    finally:
        proxy.stop()
    assert all(len(used) == 1 for used in accounts.values()), accounts
    assert len({next(iter(used)) for used in accounts.values()}) >= 2, "sessions spread over the pool"
    assert sum(len(pids) == 2 for pids in workers.values()) >= 3, "sessions answered by both workers"


def test_a_dashboard_serving_no_traffic_shows_the_pool_as_recorded(
    fake: FakeAnthropic,
    credentials_dir: Path,
    start_proxy: Callable[..., RunningProxy],
    database_url: str,
    tmp_path: Path,
) -> None:
    oauth_pool(fake, credentials_dir, TOKENS)
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "proxy"))
    fake.utilization_of.update({TOKENS["acct-a"]: "0.42", TOKENS["acct-b"]: "0.10", TOKENS["acct-c"]: "0.10"})
    for n in range(12):
        assert send(proxy, f"s-{n}").status_code == 200
    # Every account out: the client gets the 429 of the last one tried, recorded with it (a
    # 429 that a failover hides is not an exchange of its own).
    fake.rejected_tokens.update(TOKENS.values())
    fake.unified_reset = str(int(time.time()) + 3600)  # the window comes back in an hour
    assert send(proxy, "late").status_code == 429
    rested = served_by(fake)
    wait_for_rows(database_url, 13)
    dashboard = start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "dashboard"),
        NEXUS_ROLE="dashboard",
        DASHBOARD_API_KEY="pool-dashboard-key",
    )

    def members() -> dict[str, str]:
        page = sign_in(dashboard.url, "pool-dashboard-key").get("/dashboard/usage").text
        section = page[page.index('data-section="pools"') :]
        section = section[: section.index("</section>")]
        assert "As the database last recorded" in section
        return dict(re.findall(r'data-pool-member="([^"]+)">(.*?)</tr>', section, re.S))

    wait_for(lambda: "rests" in members()[rested])
    rows = members()
    assert "rejected" in rows[rested]
    others = [name for name in TOKENS if name != rested]
    assert all("in use" in rows[name] for name in others)
    assert all(("42" if name == "acct-a" else "10") in rows[name] for name in others), "their last utilization"
