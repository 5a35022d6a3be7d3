"""The AI analysis panel of the dashboard's conversation page: generate (behind CSRF), the state
while it runs (htmx polls the panel), the result escaped, regenerate with a custom prompt."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from tests.integration.test_analysis import KEY, conversation
from tests.support.dashboard import csrf_token, sign_in
from tests.support.fake_gemini import FakeGemini
from tests.support.proxy_server import RunningProxy
from tests.support.waiting import wait_for

XSS = "<script>alert(1)</script>"


def state(page: str) -> str:
    match = re.search(r'data-analysis-state="([a-z]+)"', page)
    assert match, "the page has the analysis panel"
    return match.group(1)


def test_the_panel_generates_shows_and_regenerates_an_analysis(
    analysing: Callable[..., RunningProxy], gemini: FakeGemini
) -> None:
    proxy = analysing(AI_ANALYSIS_RATE_LIMIT_CREATION="2")
    conversation_id = conversation(proxy, "Tidy the linker")
    browser = sign_in(proxy.url, KEY)
    path = f"/dashboard/conversations/{conversation_id}"
    gemini.analysis["summary"] = f"A summary with {XSS} in it."
    page = browser.get(path).text
    assert state(page) == "none"
    assert "has not been analysed yet" in page
    assert browser.post(f"{path}/analysis", data={"branch": "main"}).status_code == 403, "no CSRF token"

    posted = browser.post(f"{path}/analysis", data={"branch": "main", "_csrf_token": csrf_token(page)})
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{path}?analysis_branch=main#analysis"
    wait_for(lambda: state(browser.get(path).text) == "completed", timeout=15)
    done = browser.get(path).text
    assert html.escape(XSS) in done, "the model's text is escaped"
    assert XSS not in done
    assert "Add a jitter test" in done
    assert "8 / 10, 6 / 10" in done

    fragment = browser.post(
        f"{path}/analysis",
        data={"branch": "main", "regenerate": "1", "custom_prompt": "Only the tests, please"},
        headers={"hx-request": "true", "x-csrftoken": browser.cookies["nexus_csrf"]},
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="analysis-panel"'), "the panel alone"
    assert state(fragment.text) in ("pending", "processing")
    assert 'hx-trigger="every 2s"' in fragment.text, "polled while it runs"
    wait_for(lambda: state(browser.get(f"{path}/analysis").text) == "completed", timeout=15)
    assert gemini.received()[-1]["body"]["systemInstruction"]["parts"][0]["text"].startswith("Only the tests")

    limited = browser.post(
        f"{path}/analysis",
        data={"branch": "main", "regenerate": "1"},
        headers={"hx-request": "true", "x-csrftoken": browser.cookies["nexus_csrf"]},
    )
    assert limited.status_code == 429
    assert "Too many analyses requested" in limited.text
    unknown = browser.post(
        f"{path}/analysis",
        data={"branch": "nope"},
        headers={"hx-request": "true", "x-csrftoken": browser.cookies["nexus_csrf"]},
    )
    assert unknown.status_code == 404
    assert "has no branch" in html.unescape(unknown.text)
