"""The overview through the running proxy, signed in as a browser: its charts carry every
bucket of the period (minutes, hours or days, empty ones as zeros), requests without a model
are named for what they are, and its 10 s poll gets the figures alone."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.dashboard import sign_in
from tests.support.database import wait_for_rows
from tests.support.proxy_server import RunningProxy
from tests.support.usage_history import bucket_labels, is_error, per_bucket, seed_history

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-overview-tests"
HISTORY = "history.example"


def charts(html: str) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads(spec) for spec, name in re.findall(r"data-chart='([^']*)' data-chart-name=\"([a-z]+)\"", html)
    }


def since_of(html: str) -> datetime:
    match = re.search(r'data-caption="period">From <time datetime="([^"]+)"', html)
    assert match, "the caption says where the period starts"
    return datetime.fromisoformat(match.group(1))


@pytest.fixture
def history(
    start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> tuple[RunningProxy, list[dict[str, Any]]]:
    """Messages calls, a model list and a refused request through the proxy, and rows minutes
    to weeks old on ``history.example``."""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=KEY)
    client = sdk(proxy.url)
    for _ in range(2):
        client.messages.create(model="claude-sonnet-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert client.models.list().data  # a side call: GET /v1/models names no model
    refused = httpx.post(f"{proxy.url}/v1/messages", json={"model": 5, "messages": []})
    assert refused.status_code == 400  # refused by the proxy before a model was read
    wait_for_rows(database_url, 4)
    return proxy, seed_history(database_url, datetime.now(UTC), domain=HISTORY)


@pytest.mark.parametrize("period", ["1h", "24h", "7d", "30d"])
def test_the_charts_have_every_bucket_of_the_period_with_its_sums(
    history: tuple[RunningProxy, list[dict[str, Any]]], period: str
) -> None:
    proxy, rows = history
    browser = sign_in(proxy.url, KEY)
    before = datetime.now(UTC)
    html = browser.get("/dashboard/", params={"period": period}).text
    after = datetime.now(UTC)
    since = since_of(html)
    found = charts(html)
    assert set(found) == {"requests", "tokens", "models", "types"}

    labels = found["requests"]["labels"]
    assert labels in (bucket_labels(period, since, before), bucket_labels(period, since, after))
    if period == "1h":  # from the start of the hour an hour ago until this minute
        assert 61 <= len(labels) <= 120
    else:
        assert len(labels) == {"24h": 25, "7d": 169, "30d": 31}[period]
    expected = per_bucket(period, rows, since, labels)
    assert found["requests"]["series"] == [
        {"label": "Requests", "data": expected["requests"]},
        {"label": "Errors", "data": expected["errors"], "color": "--error"},
    ]
    assert found["requests"]["overlay"] is True, "errors drawn over their requests"
    assert found["tokens"]["labels"] == labels
    assert found["tokens"]["series"] == [
        {"label": "Input", "data": expected["input_tokens"]},
        {"label": "Output", "data": expected["output_tokens"]},
        {"label": "Cache read", "data": expected["cache_read_input_tokens"]},
        {"label": "Cache write", "data": expected["cache_creation_input_tokens"]},
    ]
    assert 0 in expected["requests"], "gaps are drawn as zeros"
    assert sum(1 for count in expected["requests"] if count) >= 2, "the seeded traffic spans several buckets"
    step = {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day"}[period]
    assert f"Requests per {step} (UTC)" in html
    assert f"Tokens per {step} (UTC)" in html


def test_requests_without_a_model_are_named_for_what_they_are(
    history: tuple[RunningProxy, list[dict[str, Any]]],
) -> None:
    proxy, rows = history
    html = sign_in(proxy.url, KEY).get("/dashboard/", params={"period": "24h"}).text
    since = since_of(html)
    shown = [row for row in rows if row["ts"] >= since]
    models = charts(html)["models"]
    assert "unknown" not in models["labels"]
    slices = dict(zip(models["labels"], models["series"][0]["data"], strict=True))
    named = Counter(row["model"] for row in shown if row["model"] is not None)
    assert slices == {
        **named,
        "no model: other endpoints": sum(1 for row in shown if row["model"] is None and not is_error(row)),
        "no model: refused or failed": sum(1 for row in shown if row["model"] is None and is_error(row)),
    }
    assert (slices["no model: other endpoints"], slices["no model: refused or failed"]) == (1, 1)
    assert 'data-note="no-model"' in html
    types = charts(html)["types"]
    assert "other" not in types["labels"]
    assert dict(zip(types["labels"], types["series"][0]["data"], strict=True))["other endpoints"] >= 1

    quiet = sign_in(proxy.url, KEY).get("/dashboard/", params={"period": "24h", "domain": HISTORY}).text
    assert 'data-note="no-model"' not in quiet, "no note where every request names its model"


def test_the_poll_gets_the_figures_alone_and_a_quiet_period_says_so(
    history: tuple[RunningProxy, list[dict[str, Any]]],
) -> None:
    proxy, _ = history
    browser = sign_in(proxy.url, KEY)
    page = browser.get("/dashboard/", params={"period": "7d", "domain": HISTORY})
    poll = re.search(r'<div id="overview-figures" hx-get="([^"]+)"\s+hx-trigger="([^"]+)"', page.text)
    assert poll, "the figures poll themselves"
    assert poll.group(1) == f"/dashboard/?period=7d&amp;domain={HISTORY}"
    assert poll.group(2) == "every 10s, nexus:refresh"
    assert page.headers["vary"] == "HX-Request"

    fragment = browser.get("/dashboard/", params={"period": "7d", "domain": HISTORY}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'id="overview-figures"' not in fragment.text
    assert set(charts(fragment.text)) == {"requests", "tokens", "models", "types"}
    assert charts(fragment.text) == charts(page.text)

    nothing = browser.get("/dashboard/", params={"period": "1h", "domain": "quiet.example"}).text
    assert "<canvas" not in nothing, "no empty chart"
    assert nothing.count("No requests in this period on quiet.example.") == 4

    signed_out = httpx.get(f"{proxy.url}/dashboard/", headers={"HX-Request": "true"})
    assert signed_out.headers["hx-redirect"].startswith("/dashboard/login"), "a poll after the session ends"
