"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser downloads are never used: the browser is launched through
``executable_path`` (``make test`` installs Debian's chromium with apt-get when it is missing).
Every test in this directory is marked ``browser``. Screenshots go to
``test-artifacts/screenshots/<name>.png``; a failing test that used ``page`` or ``phone_page``
leaves ``test-artifacts/screenshots/failed-<test>.png`` behind. ``wide`` and ``phone`` are
those pages watched: a CSP violation, a script error or a console error fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent.parent / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

DESKTOP_VIEWPORT = {"width": 1440, "height": 900}  # the laptop the issues were reported on
PHONE_VIEWPORT = {"width": 390, "height": 844}  # an iPhone 12-15 in portrait
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def chromium_executable() -> str:
    """Debian's chromium; a missing browser fails the test run, it never skips it."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if found is None:
        pytest.fail(
            "chromium is not installed: the browser tests need Debian's chromium "
            "(`make test` installs it; by hand: apt-get install -y chromium)",
            pytrace=False,
        )
    return found


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of ``page`` as ``test-artifacts/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def no_sideways_scroll(page: Page) -> None:
    """The page is no wider than the screen: nothing to scroll sideways to."""
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    # A mobile viewport zooms out to a page wider than the screen, and innerWidth grows with it:
    # the screen's own width is the bound too.
    screen = page.viewport_size["width"] if page.viewport_size else inner
    assert width <= min(inner, screen), f"the page is {width} px wide on a {screen} px screen"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    args = ["--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    instance = playwright.chromium.launch(executable_path=chromium_executable(), headless=True, args=args)
    yield instance
    instance.close()


def _page(browser: Browser, request: pytest.FixtureRequest, **context_options: object) -> Iterator[Page]:
    context = browser.new_context(**context_options)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(_CALL_FAILED, False) and not page.is_closed():
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            try:
                screenshot(page, f"failed-{name}")
            except Exception as error:  # a crashed page must not hide the test's own failure
                print(f"could not save a screenshot of the failed test: {error}")
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context with a 1440x900 desktop viewport."""
    yield from _page(browser, request, viewport=DESKTOP_VIEWPORT)


@pytest.fixture
def phone_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context emulating a phone: 390x844, touch, mobile viewport."""
    yield from _page(browser, request, viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True)


@pytest.fixture(name="screenshot")
def screenshot_fixture() -> object:
    """The ``screenshot(page, name)`` helper, for tests that prefer a fixture to an import."""
    return screenshot


def watch(page: Page, *, http_errors: bool = False) -> Iterator[Page]:
    """Yield the page, then fail on any CSP violation, script error or console error.

    ``http_errors`` lets Chromium's "Failed to load resource" lines by, for tests whose own
    business is an error status (a refused login is a 401 on purpose).
    """
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not (http_errors and message.text.startswith("Failed to load resource")):
            problems.append(message.text)

    page.add_init_script(WATCH_CSP)
    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    violations = page.evaluate("window.__violations || []") if not page.is_closed() else []
    assert not violations, violations
    assert not problems, problems


@pytest.fixture
def wide(page: Page) -> Iterator[Page]:
    """``page`` (1440x900), watched."""
    yield from watch(page)


@pytest.fixture
def phone(phone_page: Page) -> Iterator[Page]:
    """``phone_page`` (390x844, touch), watched."""
    yield from watch(phone_page)
