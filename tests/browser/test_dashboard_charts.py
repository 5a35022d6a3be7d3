"""The dashboard's charts in headless Chromium with traffic minutes to weeks old: what each one
draws at every period, at laptop and phone sizes, and the overview taking in new traffic
without a reload (and without asking while its tab is hidden)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.charts import assert_draws_its_data, canvas, drawn, values_of
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import Recorded, recorded, sign_in, watched  # noqa: F401 -- fixtures
from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    database_url,
    fake,
    postgres_url,
    start_proxy,
)
from tests.support.database import wait_for_rows
from tests.support.usage_history import LABELS, per_bucket, seed_history, stored

HISTORY = "history.example"
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
    """The recorded conversation and ``PAST``'s rows on history.example: every stored row."""
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
        if device == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "no sideways scrolling"
        screenshot(page, f"overview-{period}-{device}")


def test_the_usage_charts_draw_the_hours_and_days_of_an_account(
    recorded: Recorded,  # noqa: F811
    history: list[dict[str, Any]],
    watched: Page,  # noqa: F811
) -> None:
    sign_in(watched, recorded.url)
    watched.goto(f"{recorded.url}/usage?account=acc_history&days=30")
    hourly = drawn(watched, canvas(watched, "hourly"))
    daily = drawn(watched, canvas(watched, "daily"))
    assert len(hourly["labels"]) == 24
    assert len(daily["labels"]) == 30
    days_with_traffic = {row["ts"].astimezone(UTC).date().isoformat() for row in history if row["domain"] == HISTORY}
    assert [label for label, count in zip(daily["labels"], values_of(daily["datasets"][1]), strict=True) if count] == [
        label for label in daily["labels"] if label in days_with_traffic
    ]
    assert_draws_its_data(hourly, "usage hourly")
    assert_draws_its_data(daily, "usage daily")
    screenshot(watched, "usage-account-history-desktop")


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
    screenshot(watched, "overview-refreshed")
