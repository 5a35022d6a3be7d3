import asyncio
from typing import Any

import pytest

from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.domain.errors import AuthenticationFailed
from tests.fakes import FakeRefresher, FixedClock, InMemoryCredentialStore

NOW = 1_800_000_000_000


def oauth_document(*, expires_at: int, refresh: str | None = "sk-ant-ort01-old") -> dict[str, Any]:
    return {
        "type": "oauth",
        "accountId": "acc_1",
        "client_api_key": "cnp_live_k",
        "slack": {"channel": "#ops"},
        "oauth": {"accessToken": "sk-ant-oat01-old", "refreshToken": refresh, "expiresAt": expires_at},
    }


def make(document: dict[str, Any], refresher: FakeRefresher | None = None) -> tuple[KeepOAuthFresh, Any, Any, Any]:
    store = InMemoryCredentialStore({"team.example": document})
    refresher = refresher or FakeRefresher()
    clock = FixedClock(NOW)
    return KeepOAuthFresh(store=store, refresher=refresher, clock=clock), store, refresher, clock


async def test_a_token_not_yet_due_is_used_as_is() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW + 61_000))
    tokens = await sut.execute(await store.find(["team.example"]))
    assert tokens.access_token == "sk-ant-oat01-old"
    assert refresher.calls == []


async def test_a_due_token_is_refreshed_saved_and_merged() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW + 59_000))
    tokens = await sut.execute(await store.find(["team.example"]))
    assert tokens.access_token == "sk-ant-oat01-new1"
    assert tokens.expires_at == NOW + 3_600_000
    assert refresher.calls == ["sk-ant-ort01-old"]
    saved = store.documents["team.example"]
    assert saved["oauth"]["refreshToken"] == "sk-ant-ort01-new1"
    assert (saved["accountId"], saved["client_api_key"], saved["slack"]) == ("acc_1", "cnp_live_k", {"channel": "#ops"})


async def test_concurrent_callers_share_one_refresh() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW - 1), FakeRefresher(delay_s=0.05))
    stored = await store.find(["team.example"])
    results = await asyncio.gather(*(sut.execute(stored) for _ in range(20)))
    assert {tokens.access_token for tokens in results} == {"sk-ant-oat01-new1"}
    assert len(refresher.calls) == 1


async def test_a_refresh_done_elsewhere_meanwhile_is_adopted_not_repeated() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW - 1))
    stale = await store.find(["team.example"])
    store.documents["team.example"]["oauth"] = {
        "accessToken": "sk-ant-oat01-theirs",
        "refreshToken": "sk-ant-ort01-theirs",
        "expiresAt": NOW + 3_600_000,
    }
    tokens = await sut.execute(stale)
    assert tokens.access_token == "sk-ant-oat01-theirs"
    assert refresher.calls == []


async def test_a_failure_is_remembered_for_the_cooldown_then_retried() -> None:
    sut, store, refresher, clock = make(oauth_document(expires_at=NOW + 30_000))
    refresher.fail_with = "token endpoint answered 400 invalid_grant"
    stored = await store.find(["team.example"])
    # Still valid for 30 s: the old token keeps serving while refresh fails.
    assert (await sut.execute(stored)).access_token == "sk-ant-oat01-old"
    assert (await sut.execute(stored)).access_token == "sk-ant-oat01-old"
    assert len(refresher.calls) == 1
    clock.advance(6)
    refresher.fail_with = None
    assert (await sut.execute(stored)).access_token == "sk-ant-oat01-new2"
    assert len(refresher.calls) == 2


async def test_an_expired_token_that_cannot_be_refreshed_is_an_authentication_error() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW - 1))
    refresher.fail_with = "token endpoint answered 400 invalid_grant"
    with pytest.raises(AuthenticationFailed, match="invalid_grant"):
        await sut.execute(await store.find(["team.example"]))


async def test_no_refresh_token_means_no_refresh() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW - 1, refresh=None))
    with pytest.raises(AuthenticationFailed, match="no refresh token"):
        await sut.execute(await store.find(["team.example"]))
    assert refresher.calls == []


async def test_forced_refresh_ignores_the_schedule() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW + 3_000_000))
    tokens = await sut.execute(await store.find(["team.example"]), force=True)
    assert tokens.access_token == "sk-ant-oat01-new1"
    assert len(refresher.calls) == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh() -> None:
    sut, store, refresher, _ = make(oauth_document(expires_at=NOW - 1), FakeRefresher(delay_s=0.05))
    stored = await store.find(["team.example"])
    impatient = asyncio.create_task(sut.execute(stored))
    patient = asyncio.create_task(sut.execute(stored))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert (await patient).access_token == "sk-ant-oat01-new1"
    assert len(refresher.calls) == 1


async def test_metrics_count_attempts_successes_failures_and_waits() -> None:
    sut, store, refresher, clock = make(oauth_document(expires_at=NOW + 30_000), FakeRefresher(delay_s=0.02))
    stored = await store.find(["team.example"])
    refresher.fail_with = "token endpoint answered 400 invalid_grant"
    await asyncio.gather(*(sut.execute(stored) for _ in range(3)))
    failed = sut.metrics()
    assert (failed.attempts, failed.successes, failed.failures, failed.concurrent_waits) == (1, 0, 1, 2)
    assert failed.current_failed_refreshes == 1
    clock.advance(6)
    refresher.fail_with = None
    running = asyncio.create_task(sut.execute(stored))
    await asyncio.sleep(0.005)
    assert sut.metrics().current_active_refreshes == 1
    await running
    done = sut.metrics()
    assert (done.attempts, done.successes, done.failures) == (2, 1, 1)
    assert (done.current_active_refreshes, done.current_failed_refreshes) == (0, 0)
