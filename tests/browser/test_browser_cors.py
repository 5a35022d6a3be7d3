"""A web page on another origin calls the proxy from a real browser, as the SDK does with
``dangerouslyAllowBrowser``: allowed only for the origins of ``CORS_ALLOWED_ORIGINS``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiohttp import web
from playwright.sync_api import Page

from tests.integration.conftest import (  # noqa: F401 -- fixtures shared with the integration tests
    credentials_dir,
    fake,
    start_proxy,
)
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.loopback_app import LoopbackApp
from tests.support.proxy_server import RunningProxy

# What the Anthropic SDK sends from a browser; a JSON body makes the request non-simple, so the
# browser asks with a preflight first.
CALL_JS = """async ([url, key]) => {
  try {
    const response = await fetch(url + "/v1/messages", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": key,
        "anthropic-version": "2023-06-01",
        "anthropic-dangerous-direct-browser-access": "true",
      },
      body: JSON.stringify({model: "claude-sonnet-5", max_tokens: 16, messages: [{role: "user", content: "hi"}]}),
    });
    const body = await response.json();
    return {status: response.status, type: body.type, requestId: response.headers.get("request-id")};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


class WebPage(LoopbackApp):
    """The page's own origin: a blank document."""

    def add_routes(self, app: web.Application) -> None:
        async def index(_: web.Request) -> web.Response:
            return web.Response(text="<!doctype html><title>app</title>", content_type="text/html")

        app.router.add_get("/", index)


@pytest.fixture
def web_page() -> Iterator[WebPage]:
    with WebPage() as server:
        yield server


def proxy_url(proxy: RunningProxy) -> str:
    return f"http://localhost:{proxy.port}"  # another host than the page's 127.0.0.1: cross-origin


def test_a_page_of_an_allowed_origin_gets_its_answer(
    page: Page,
    web_page: WebPage,
    fake: FakeAnthropic,  # noqa: F811
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
) -> None:
    proxy = start_proxy(CORS_ALLOWED_ORIGINS=web_page.url)
    page.goto(web_page.url)
    result = page.evaluate(CALL_JS, [proxy_url(proxy), DEFAULT_API_KEY])
    assert result["status"] == 200, result
    assert result["type"] == "message"
    assert result["requestId"], "the exposed headers are readable by the page"
    assert [request.path for request in fake.requests] == ["/v1/messages"], "the preflight stayed in the proxy"


def test_a_page_of_any_other_origin_is_blocked_by_the_browser(
    page: Page,
    web_page: WebPage,
    fake: FakeAnthropic,  # noqa: F811
    start_proxy: Callable[..., RunningProxy],  # noqa: F811
) -> None:
    proxy = start_proxy(CORS_ALLOWED_ORIGINS="https://app.team.example")
    page.goto(web_page.url)
    result = page.evaluate(CALL_JS, [proxy_url(proxy), DEFAULT_API_KEY])
    assert "blocked" in result, result
    assert fake.requests == [], "the browser never sent the request itself"
