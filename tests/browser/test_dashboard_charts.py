"""The dashboard's charts in headless Chromium with traffic minutes to weeks old: what each one
draws at every period, at laptop and phone sizes, and the overview taking in new traffic
without a reload (and without asking while its tab is hidden)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.charts import assert_draws_its_data, canvas, chart_screenshot, drawn, values_of
from tests.browser.conftest import no_sideways_scroll
from tests.browser.test_dashboard import KEY, Recorded, recorded, sign_in, watched  # noqa: F401 -- fixtures
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    sdk,
    start_proxy,
)
from tests.support.database import wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY
from tests.support.proxy_server import RunningProxy
from tests.support.usage_history import LABELS, per_bucket, seed_history, stored

HISTORY = "history.example"
# The models chart's slices of requests naming no model, as a reader sees them.
NO_MODEL_CALLS, NO_MODEL_ERRORS = "no model: other endpoints", "no model: refused or failed"
TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
# document.hidden as the test sets it: a headless tab is never hidden by itself.
HIDDEN = """
window.__hidden = false;
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return window.__hidden; } });
"""
# htmx's requests as events: asked (a poll came due), sent (it went out), done.
POLLS = """
window.__polls = { asked: 0, sent: 0, done: 0 };
document.addEventListener("htmx:beforeRequest", () => { window.__polls.asked++; });
document.addEventListener("htmx:beforeSend", () => { window.__polls.sent++; });
document.addEventListener("htmx:afterRequest", () => { window.__polls.done++; });
window.__notReloaded = true;
"""
# Functions, not expressions: Playwright evaluates an expression with eval(), which the CSP refuses.
REQUESTS_DRAWN = """() => {
  const chart = Chart.getChart(document.querySelector("canvas[data-chart-name=requests]"));
  return chart ? chart.data.datasets[0].data.reduce((a, b) => a + (b || 0), 0) : -1;
}"""
DRAWS_REQUESTS = f"(count) => ({REQUESTS_DRAWN})() === count"


@pytest.fixture
def history(recorded: Recorded, database_url: str) -> list[dict[str, Any]]:  # noqa: F811
    """The recorded conversation, two requests naming no model (a model list, and a Messages
    call upstream refused for having none) and ``PAST``'s rows on history.example: every stored row."""
    before = len(stored(database_url))
    sdk(recorded.proxy.url).models.list()
    refused = httpx.post(
        f"{recorded.proxy.url}/v1/messages",
        json={"max_tokens": 16, "messages": [{"role": "user", "content": "Which model am I?"}]},
        headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
    )
    assert refused.status_code == 400, refused.text
    assert len(wait_for_rows(database_url, before + 2)) == before + 2
    return seed_history(database_url, datetime.now(UTC), domain=HISTORY)


def since_of(page: Page) -> datetime:
    moment = page.locator("[data-caption=period] time").get_attribute("datetime")
    assert moment, "the caption says where the period starts"
    return datetime.fromisoformat(moment)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_each_overview_chart_draws_every_bucket_of_its_period(
    recorded: Recorded,  # noqa: F811
    history: list[dict[str, Any]],
    watched: Page,  # noqa: F811
    phone_page: Page,
    device: str,
) -> None:
    page = watched if device == "desktop" else phone_page
    sign_in(page, recorded.url)
    for period in LABELS:
        page.goto(f"{recorded.url}/?period={period}")
        since = since_of(page)
        requests = drawn(page, canvas(page, "requests"))
        tokens = drawn(page, canvas(page, "tokens"))
        labels = requests["labels"]
        assert labels[0] == since.strftime(LABELS[period])
        expected = per_bucket(period, history, since, labels)
        assert [values_of(dataset) for dataset in requests["datasets"]] == [expected["requests"], expected["errors"]]
        assert tokens["labels"] == labels
        assert [values_of(dataset) for dataset in tokens["datasets"]] == [expected[name] for name in TOKENS]
        assert sum(1 for count in expected["requests"] if count) >= 2, f"{period}: traffic in several buckets"
        assert 0 in expected["requests"], f"{period}: and gaps between them"
        for name in ("requests", "tokens", "models", "types"):
            assert_draws_its_data(drawn(page, canvas(page, name)), f"{period} {name}")
        models = drawn(page, canvas(page, "models"))
        assert "unknown" not in models["labels"]
        # The two requests naming no model are minutes old: in every period, each in its slice.
        slices = dict(zip(models["labels"], values_of(models["datasets"][0]), strict=True))
        assert slices[NO_MODEL_CALLS] == 1, slices
        assert slices[NO_MODEL_ERRORS] == 1, slices
        for label in (NO_MODEL_CALLS, NO_MODEL_ERRORS):
            assert models["datasets"][0]["painted"][models["labels"].index(label)] > 0, f"{period}: {label} drawn"
        note = page.locator("[data-figure=models] [data-note=no-model]")
        expect(note).to_be_visible()
        expect(note).to_contain_text("endpoints other than Messages")
        if device == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "no sideways scrolling"
        chart_screenshot(page, f"overview-{period}-{device}")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_usage_charts_draw_the_hours_and_days_of_an_account(
    recorded: Recorded,  # noqa: F811
    history: list[dict[str, Any]],
    watched: Page,  # noqa: F811
    phone: Page,
    device: str,
) -> None:
    page = watched if device == "desktop" else phone
    sign_in(page, recorded.url)
    days_with_traffic = {row["ts"].astimezone(UTC).date().isoformat() for row in history if row["domain"] == HISTORY}
    # Every choice of history in one test (one proxy and one seeding): the days differ only in
    # how many buckets the daily chart has, so each is drawn and screenshotted in turn.
    for days in (7, 14, 30):
        page.goto(f"{recorded.url}/usage?account=acc_history&days={days}")
        hourly = drawn(page, canvas(page, "hourly"))
        daily = drawn(page, canvas(page, "daily"))
        assert len(hourly["labels"]) == 24
        assert len(daily["labels"]) == days
        assert daily["labels"][-1] == datetime.now(UTC).date().isoformat(), f"{days} d: up to today"
        busy = [label for label in daily["labels"] if label in days_with_traffic]
        assert len(busy) >= 2, f"{days} d: traffic on several of its days"
        counts = values_of(daily["datasets"][1])
        assert [label for label, count in zip(daily["labels"], counts, strict=True) if count] == busy
        assert_draws_its_data(hourly, f"usage hourly {days} d")
        assert_draws_its_data(daily, f"usage daily {days} d")
        if device == "phone":
            no_sideways_scroll(page)
        chart_screenshot(page, f"usage-account-history-{days}d-{device}")


def test_the_overview_takes_in_new_traffic_without_a_reload_and_waits_while_hidden(
    recorded: Recorded,  # noqa: F811
    database_url: str,  # noqa: F811
    watched: Page,  # noqa: F811
) -> None:
    watched.add_init_script(HIDDEN)
    sign_in(watched, recorded.url)
    watched.goto(f"{recorded.url}/?period=1h")
    watched.evaluate(POLLS)
    stored_before = len(stored(database_url))
    assert sum(values_of(drawn(watched, canvas(watched, "requests"))["datasets"][0])) == stored_before
    expect(watched.locator("[data-metric=requests]")).to_have_text(str(stored_before))

    recorded.main.say("One more question while the overview is open.")
    # The next poll (every 10 s) draws it: waited for, not timed.
    watched.wait_for_function(DRAWS_REQUESTS, arg=stored_before + 1, timeout=30_000)
    expect(watched.locator("[data-metric=requests]")).to_have_text(str(stored_before + 1))
    assert watched.evaluate("window.__notReloaded") is True, "swapped in, not reloaded"
    assert_draws_its_data(drawn(watched, canvas(watched, "requests")), "refreshed requests")

    watched.evaluate("() => { window.__hidden = true; }")
    watched.wait_for_function("() => window.__polls.sent === window.__polls.done")  # none in flight
    sent = watched.evaluate("window.__polls.sent")
    recorded.main.say("And one while the tab is hidden.")
    assert len(wait_for_rows(database_url, stored_before + 2)) == stored_before + 2
    asked = watched.evaluate("window.__polls.asked")
    watched.wait_for_function("(asked) => window.__polls.asked > asked", arg=asked, timeout=30_000)  # came due...
    assert watched.evaluate("window.__polls.sent") == sent, "...and was not sent"
    assert watched.evaluate(REQUESTS_DRAWN) == stored_before + 1

    watched.evaluate("() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); }")
    watched.wait_for_function(DRAWS_REQUESTS, arg=stored_before + 2, timeout=10_000)
    assert watched.evaluate("window.__notReloaded") is True
    chart_screenshot(watched, "overview-refreshed")


def test_one_request_in_one_bucket_still_draws_a_mark_one_can_see(
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
    database_url: str,  # noqa: F811
    tmp_path: Path,
    wide: Page,
) -> None:
    """A single non-zero bucket among zero-filled ones (a line through one point draws nothing
    unless it has a dot; a bar one bucket wide among sixty must still show)."""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    sdk(proxy.url).messages.create(
        model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": "Just this one, please."}]
    )
    assert len(wait_for_rows(database_url, 1)) == 1
    sign_in(wide, f"{proxy.url}/dashboard")
    for period in LABELS:
        wide.goto(f"{proxy.url}/dashboard/?period={period}")
        requests, tokens = drawn(wide, canvas(wide, "requests")), drawn(wide, canvas(wide, "tokens"))
        assert len(requests["labels"]) > 1, f"{period}: the period's buckets, zero-filled"
        counts = values_of(requests["datasets"][0])
        assert sorted(counts)[-2:] == [0, 1], f"{period}: one bucket holds the request, the others none"
        busy = counts.index(1)
        assert requests["datasets"][0]["elements"][busy]["height"] >= 2, f"{period}: the bar stands clear of the axis"
        assert requests["datasets"][0]["painted"][0] > 0, f"{period}: the bar's colour is on the plot"
        [input_tokens] = [dataset for dataset in tokens["datasets"] if dataset["label"] == "Input"]
        assert [index for index, value in enumerate(values_of(input_tokens)) if value] == [busy]
        point = input_tokens["elements"][busy]
        assert point["radius"] > 0, f"{period}: a dot where no line reaches"
        assert point["above"] > 0, f"{period}: above the axis"
        assert input_tokens["painted"][0] > 0, f"{period}: the dot's colour is on the plot"
        assert_draws_its_data(requests, f"{period} one request")
        assert_draws_its_data(tokens, f"{period} one request's tokens")
        chart_screenshot(wide, f"overview-one-request-{period}")
