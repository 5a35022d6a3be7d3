"""The vendored dashboard assets work in a real browser under the dashboard's strict CSP.

A throwaway stdlib HTTP server serves a small page with the Content-Security-Policy the dashboard
sends; the page loads htmx, its SSE extension and Chart.js from the package's static/vendor/
directory (fetched by scripts/fetch_dashboard_assets.py), does an htmx swap, receives an SSE
event and draws a chart. Every CSP violation is collected twice: by a ``securitypolicyviolation``
listener loaded first (a same-origin script; inline scripts are refused) and from the console.

htmx injects a ``<style>`` for its request indicators on load, which ``style-src 'self'`` refuses;
``<meta name="htmx-config" content='{"includeIndicatorStyles":false}'>`` turns that off (the
dashboard's own stylesheet then carries the ``.htmx-indicator`` rules). Both halves are shown here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from playwright.sync_api import ConsoleMessage, Page

import nexus
from tests.browser.charts import chart_screenshot
from tests.browser.conftest import DESKTOP_VIEWPORT, screenshot

VENDOR = Path(nexus.__file__).resolve().parent / "entrypoints" / "dashboard" / "static" / "vendor"

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"
HTMX_CONFIG = json.dumps({"includeIndicatorStyles": False})

CSP_PROBE_JS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
  });
});
"""

APP_JS = """
(function () {
  "use strict";
  var canvas = document.getElementById("chart");
  var chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
      datasets: [{ label: "Requests", data: [12, 19, 7, 15, 22, 3, 9], backgroundColor: "#4f6bed" }],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false },
  });
  var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  var painted = 0;
  for (var i = 3; i < pixels.length; i += 4) {
    if (pixels[i] !== 0) painted++;
  }
  window.__chart = { bars: chart.getDatasetMeta(0).data.length, painted: painted, width: canvas.clientWidth };
})();
"""

SITE_CSS = """
body { font-family: sans-serif; margin: 1rem; }
.chart-box { position: relative; height: 320px; max-width: 100%; }
.htmx-indicator { opacity: 0; visibility: hidden; }
.htmx-request .htmx-indicator, .htmx-request.htmx-indicator { opacity: 1; visibility: visible; }
"""


def page_html(*, htmx_config: str | None) -> str:
    meta = f"<meta name=\"htmx-config\" content='{htmx_config}'>" if htmx_config is not None else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta}
<title>Dashboard assets smoke test</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/site.css">
<script src="/csp-probe.js"></script>
</head>
<body>
<h1>Assets under a strict CSP</h1>
<button id="load" hx-get="/fragment" hx-target="#target">Load fragment</button>
<div id="target">not loaded</div>
<div id="live" hx-ext="sse" sse-connect="/events" sse-swap="tick">waiting for events</div>
<div class="chart-box"><canvas id="chart"></canvas></div>
<script src="/vendor/htmx.min.js"></script>
<script src="/vendor/sse.min.js"></script>
<script src="/vendor/chart.umd.min.js"></script>
<script src="/app.js"></script>
</body>
</html>
"""


ROUTES: dict[str, tuple[str, str]] = {
    "/": ("text/html; charset=utf-8", page_html(htmx_config=HTMX_CONFIG)),
    "/unconfigured": ("text/html; charset=utf-8", page_html(htmx_config=None)),
    "/csp-probe.js": ("text/javascript; charset=utf-8", CSP_PROBE_JS),
    "/app.js": ("text/javascript; charset=utf-8", APP_JS),
    "/site.css": ("text/css; charset=utf-8", SITE_CSS),
    "/fragment": ("text/html; charset=utf-8", '<p id="swapped">swapped by htmx</p>'),
}


class Handler(BaseHTTPRequestHandler):
    stop: ClassVar[threading.Event]

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/events":
            self._events()
        elif path.startswith("/vendor/"):
            name = path.removeprefix("/vendor/")
            file = VENDOR / name
            if "/" in name or not name.endswith(".js") or not file.is_file():
                self.send_error(HTTPStatus.NOT_FOUND)
            else:
                self._send("text/javascript; charset=utf-8", file.read_bytes())
        elif path == "/favicon.ico":
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()
        elif path in ROUTES:
            content_type, body = ROUTES[path]
            self._send(content_type, body.encode())
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _send(self, content_type: str, body: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """One ``tick`` event, then keep-alive comments until the browser or the server goes."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            self.wfile.write(b"event: tick\ndata: <strong id='event'>live via SSE</strong>\n\n")
            self.wfile.flush()
            while not self.stop.wait(0.2):
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:
            pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    missing = [name for name in ("htmx.min.js", "sse.min.js", "chart.umd.min.js") if not (VENDOR / name).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing from {VENDOR}: run `make install`", pytrace=False)
    stop = threading.Event()
    handler = type("SiteHandler", (Handler,), {"stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Console:
    """What the page said: console errors and warnings, uncaught exceptions."""

    messages: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.messages.append(f"{message.type}: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.messages.append(f"pageerror: {error}")

    @property
    def csp(self) -> list[str]:
        return [message for message in self.messages if "Content Security Policy" in message]


def open_page(page: Page, url: str) -> Console:
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    page.goto(url)
    page.wait_for_function("window.__chart !== undefined")
    return console


def exercise(page: Page) -> None:
    """An htmx request and swap, an SSE event swapped in by the extension."""
    page.click("#load")
    page.wait_for_selector("#target #swapped")
    page.wait_for_selector("#live #event")


def violations(page: Page) -> list[dict[str, Any]]:
    time.sleep(0.2)  # securitypolicyviolation events are dispatched asynchronously
    result: list[dict[str, Any]] = page.evaluate("window.__cspViolations")
    return result


def test_assets_load_and_work_under_a_strict_csp(page: Page, site: str) -> None:
    console = open_page(page, f"{site}/")
    response_csp = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert response_csp == CSP

    assert page.evaluate("window.htmx.version").startswith("2.")
    assert page.evaluate("window.Chart.version").startswith("4.")
    # htmx 2 runs an extension's init as it is defined; the SSE extension installs createEventSource.
    assert page.evaluate("typeof window.htmx.createEventSource") == "function"

    chart = page.evaluate("window.__chart")
    assert chart["bars"] == 7
    assert chart["painted"] > 1000, "the chart drew (almost) nothing into the canvas"
    assert 0 < chart["width"] <= DESKTOP_VIEWPORT["width"], "the chart stays within the page"

    exercise(page)
    assert page.inner_text("#target") == "swapped by htmx"
    assert page.inner_text("#live") == "live via SSE"
    # With includeIndicatorStyles off, htmx added no <style> of its own.
    assert page.evaluate("document.querySelectorAll('style').length") == 0

    chart_screenshot(page, "smoke-assets-desktop")
    assert violations(page) == []
    assert console.messages == []


def test_the_phone_viewport_draws_the_chart_within_the_screen(phone_page: Page, site: str) -> None:
    console = open_page(phone_page, f"{site}/")
    exercise(phone_page)

    chart = phone_page.evaluate("window.__chart")
    assert chart["painted"] > 1000
    assert 0 < chart["width"] <= 390
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"

    chart_screenshot(phone_page, "smoke-assets-phone")
    assert violations(phone_page) == []
    assert console.messages == []


def test_without_the_htmx_config_its_indicator_style_breaks_the_csp(page: Page, site: str) -> None:
    """Why the dashboard's pages need the htmx-config meta tag: the injected <style> is refused."""
    console = open_page(page, f"{site}/unconfigured")
    exercise(page)  # htmx still works; only its indicator style is refused

    styles = page.evaluate("Array.from(document.querySelectorAll('style'), s => s.textContent)")
    assert len(styles) == 1
    assert ".htmx-indicator" in styles[0]

    found = violations(page)
    assert [(v["directive"], v["blocked"]) for v in found] == [("style-src-elem", "inline")]
    assert found[0]["source"].endswith("/vendor/htmx.min.js")
    assert len(console.csp) == 1
    assert "style-src 'self'" in console.csp[0]
    screenshot(page, "smoke-assets-unconfigured-htmx")
