"""Real servers on loopback: the fake Anthropic API and the proxy in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import anthropic
import pytest

from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.proxy_server import RunningProxy


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "credentials"
    directory.mkdir()
    return directory


@pytest.fixture
def start_proxy(fake: FakeAnthropic, credentials_dir: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start a proxy in front of ``fake``; keyword arguments are extra environment settings."""
    with ExitStack() as stack:

        def start(**environment: str) -> RunningProxy:
            settings = {
                "CLAUDE_API_BASE_URL": fake.url,
                "CREDENTIALS_DIR": str(credentials_dir),
                "CLAUDE_OAUTH_TOKEN_URL": f"{fake.url}/v1/oauth/token",
                **environment,
            }
            return stack.enter_context(RunningProxy(**settings))

        yield start


@pytest.fixture
def proxy(start_proxy: Callable[..., RunningProxy]) -> RunningProxy:
    return start_proxy()


def sdk(base_url: str, **options: object) -> anthropic.Anthropic:
    """The official SDK as Claude Code's peers use it, with retries off so every call is seen."""
    options.setdefault("api_key", DEFAULT_API_KEY)
    return anthropic.Anthropic(base_url=base_url, max_retries=0, **options)  # type: ignore[arg-type]
