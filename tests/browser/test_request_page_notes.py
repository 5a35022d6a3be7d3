"""The request page in a browser (issue 18): the upstream attempts before the answer, and why a
request has no conversation (a side call, a request with no body to read: never "waiting" for the
linker unless it is queued), at 1440x900 and on a phone, with screenshots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import no_sideways_scroll, screenshot
from tests.browser.test_dashboard import KEY, sign_in
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    sdk,
    start_proxy,
)
from tests.support.database import wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def test_the_request_page_shows_retries_and_why_a_side_call_is_not_threaded(
    viewed: tuple[str, Page],
    fake: FakeAnthropic,  # noqa: F811
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    device, page = viewed
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    fake.fail_next(529, 503, headers={"retry-after": "0"})
    client = sdk(proxy.url)
    retried = client.messages.with_raw_response.create(**BODY).headers["x-request-id"]  # type: ignore[call-overload]
    side_call = client.messages.with_raw_response.create(
        **BODY,  # type: ignore[call-overload]
        system="Summarize this coding conversation in under 50 characters.",
        extra_headers={"x-claude-code-session-id": "11111111-2222-4333-8444-555555555555"},
    ).headers["x-request-id"]
    empty = httpx.post(
        f"{proxy.url}/v1/messages",
        content=b"",
        headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
    ).headers["x-request-id"]
    wait_for_rows(database_url, 3)
    sign_in(page, f"{proxy.url}/dashboard")

    page.goto(f"{proxy.url}/dashboard/requests/{retried}")
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("529")
    expect(attempts.nth(0)).to_contain_text("answered 529")
    expect(attempts.nth(1)).to_contain_text("503")
    expect(page.locator("#attempts-heading")).to_be_visible()
    screenshot(page, f"request-attempts-{device}")

    page.goto(f"{proxy.url}/dashboard/requests/{side_call}")
    expect(page.locator("[data-fact=unthreaded]")).to_contain_text("a side call of Claude Code")
    expect(page.locator("#attempts-heading")).to_have_count(0)
    screenshot(page, f"request-unthreaded-{device}")
    no_sideways_scroll(page)

    # A request that will never be threaded says why, not that it waits for the linker.
    page.goto(f"{proxy.url}/dashboard/requests/{empty}")
    note = page.locator("[data-fact=unthreaded]")
    expect(note).to_contain_text("there was no Messages request body to read")
    expect(note).not_to_contain_text("waiting")
    expect(note).not_to_contain_text("not linked yet")
    screenshot(page, f"request-unthreaded-empty-{device}")
    no_sideways_scroll(page)


def test_the_request_page_shows_a_request_the_open_circuit_refused(
    viewed: tuple[str, Page],
    fake: FakeAnthropic,  # noqa: F811
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    device, page = viewed
    proxy = start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        DASHBOARD_API_KEY=KEY,
        UPSTREAM_MAX_RETRIES="0",
        CIRCUIT_BREAKER_FAILURES="1",
    )
    fake.fail_next(500)
    client = sdk(proxy.url)
    opened = client.messages.with_raw_response.create  # type: ignore[call-overload]
    with pytest.raises(anthropic.InternalServerError):
        opened(**BODY)
    with pytest.raises(anthropic.InternalServerError) as refused:
        opened(**BODY)
    assert refused.value.status_code == 503
    refused_id = refused.value.response.headers["x-request-id"]
    wait_for_rows(database_url, 2)
    sign_in(page, f"{proxy.url}/dashboard")

    page.goto(f"{proxy.url}/dashboard/requests/{refused_id}")
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.nth(0)).to_contain_text("not sent")
    expect(attempts.nth(0)).to_contain_text("circuit open: not sent")
    expect(attempts.nth(0).locator("td[data-circuit]")).to_have_text("open")
    expect(page.locator("[data-fact=upstream-attempts]")).to_have_text("1, circuit open after the last")
    screenshot(page, f"request-circuit-open-{device}")
    no_sideways_scroll(page)
