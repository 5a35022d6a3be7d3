"""OpenTelemetry export to a real OTLP/HTTP receiver, and nothing at all when not configured."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nexus.entrypoints.container import build_container
from nexus.entrypoints.settings import load_settings
from tests.integration.conftest import sdk
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.otlp_receiver import OtlpReceiver, attributes
from tests.support.processes import ProxyProcess
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.url)
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "nexus-under-test")
        yield running


def test_spans_and_metrics_reach_the_collector(receiver: OtlpReceiver, fake: FakeAnthropic, tmp_path: object) -> None:
    with RunningProxy(CLAUDE_API_BASE_URL=fake.url, CREDENTIALS_DIR=str(tmp_path)) as proxy:
        client = sdk(proxy.url)
        with client.messages.stream(
            model="claude-sonnet-5",
            max_tokens=128,
            messages=[{"role": "user", "content": "read the config"}],
            extra_headers={SCENARIO_HEADER: "tool_use", "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"},
        ) as stream:
            final = stream.get_final_message()
        assert httpx.get(f"{proxy.url}/health").status_code == 200
        assert receiver.wait_for(lambda: len(receiver.spans()) >= 3), receiver.spans()
        assert receiver.wait_for(lambda: {"gen_ai.client.token.usage", "http.server.request.duration"}
                                 <= {name for name, _ in receiver.metric_points()})  # fmt: skip

    spans = {span.name: span for span in receiver.spans()}
    server = spans["POST /v1/messages"]
    upstream = spans["chat claude-sonnet-5"]
    assert server.trace_id.hex() == TRACE_ID, "the client's trace context is continued"
    assert server.parent_span_id.hex() == PARENT_SPAN_ID
    assert upstream.parent_span_id == server.span_id
    assert server.start_time_unix_nano <= upstream.start_time_unix_nano <= upstream.end_time_unix_nano
    assert upstream.end_time_unix_nano <= server.end_time_unix_nano
    server_attributes = attributes(server)
    assert server_attributes["http.response.status_code"] == 200
    assert server_attributes["nexus.domain"] == f"127.0.0.1:{proxy.port}", "IP literals keep their port"
    upstream_attributes = attributes(upstream)
    assert upstream_attributes["gen_ai.request.model"] == "claude-sonnet-5"
    assert upstream_attributes["gen_ai.response.model"] == final.model
    assert upstream_attributes["gen_ai.response.id"] == final.id
    assert upstream_attributes["gen_ai.response.finish_reasons"] == "tool_use"
    assert upstream_attributes["gen_ai.usage.input_tokens"] == final.usage.input_tokens
    assert upstream_attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert upstream_attributes["server.address"] == "127.0.0.1"
    assert "GET /health" in spans, "Litestar's own routes are traced too"
    assert receiver.service_names() == {"nexus-under-test"}

    points = list(receiver.metric_points())
    token_types = {
        attributes(point)["gen_ai.token.type"]: point.sum
        for name, point in points
        if name == "gen_ai.client.token.usage"
    }
    assert token_types == {"input": final.usage.input_tokens, "output": final.usage.output_tokens}
    # Exports are cumulative: the last point of each metric holds the totals.
    latest = {name: point for name, point in points}
    assert latest["gen_ai.server.time_to_first_token"].count == 1
    assert latest["nexus.proxy.requests"].as_int == 1


async def test_without_an_endpoint_no_telemetry_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    container = build_container(load_settings({"STORAGE_ENABLED": "false"}))
    await container.init_resources()  # type: ignore[misc]
    try:
        assert container.telemetry() is None
        observer = await container.exchange_observer()
        assert type(observer).__name__ == "CountingObserver", "the token counters alone: no telemetry observer"
    finally:
        await container.shutdown_resources()  # type: ignore[misc]


def test_the_sdk_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert build_container(load_settings({})).telemetry() is None


def test_shutdown_flushes_what_is_pending(fake: FakeAnthropic, tmp_path: Path) -> None:
    """Export intervals far longer than the test: only the shutdown flush can deliver."""
    with OtlpReceiver() as receiver:
        env = {
            "CLAUDE_API_BASE_URL": fake.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        }
        proxy = ProxyProcess(cwd=tmp_path, env=env).wait_ready()
        try:
            response = httpx.post(
                f"{proxy.url}/v1/messages",
                json={"model": "claude-sonnet-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
            )
            assert response.status_code == 200
            assert receiver.spans() == []
            proxy.signal(signal.SIGTERM)
            assert proxy.wait_exit(15) == 0
        finally:
            proxy.stop()
        assert "POST /v1/messages" in {span.name for span in receiver.spans()}
        assert "nexus.proxy.requests" in {name for name, _ in receiver.metric_points()}
