"""OpenTelemetry export over OTLP/HTTP, configured by the standard ``OTEL_*`` variables.

Spans and metrics for the proxy route are built after the response is complete, from the
exchange record with its real start and end times, so telemetry adds nothing to the time a
client waits. Nothing is created at all when no OTLP endpoint is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from nexus.application.exchange import Exchange
from nexus.domain.content_encoding import decoded_body
from nexus.domain.headers import header_value
from nexus.domain.outcome import is_error
from nexus.domain.proxy_request import MESSAGES_PATH
from nexus.domain.usage import ResponseFacts, facts_from_message, facts_from_sse

_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_propagator = TraceContextTextMapPropagator()
_getter: DefaultGetter = DefaultGetter()


def telemetry_configured(environ: Mapping[str, str]) -> bool:
    """Export only when an OTLP endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        """Flush what is pending and stop the exporters."""
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def build_telemetry(*, service_version: str) -> Telemetry:
    """Providers exporting to the endpoint the ``OTEL_EXPORTER_OTLP_*`` variables name.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` are honoured by the SDK; the service
    name defaults to ``claude-nexus``.
    """
    resource = Resource.create({"service.name": "claude-nexus", "service.version": service_version}).merge(
        Resource.create()
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return Telemetry(tracer_provider, MeterProvider(resource=resource, metric_readers=[reader]))


class OtelExchangeObserver:
    """A server span per exchange with a client span for the upstream call (GenAI semantic
    conventions for Messages calls), and request, duration, first-token and token metrics."""

    needs_response_body = True  # token usage is read from the response

    def __init__(self, telemetry: Telemetry, *, upstream_host: str) -> None:
        self._tracer = telemetry.tracer_provider.get_tracer("nexus.proxy")
        meter = telemetry.meter_provider.get_meter("nexus.proxy")
        self._upstream_host = upstream_host
        self._requests = meter.create_counter("nexus.proxy.requests", unit="{request}", description="Proxied requests")
        self._server_duration = meter.create_histogram("http.server.request.duration", unit="s")
        self._operation_duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        self._first_token = meter.create_histogram("gen_ai.server.time_to_first_token", unit="s")
        self._tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")

    def observe(self, exchange: Exchange) -> None:
        is_messages = exchange.path == MESSAGES_PATH and exchange.method == "POST"
        facts = _facts(exchange) if is_messages and exchange.status == 200 else None
        route = exchange.path if is_messages or exchange.path.startswith(MESSAGES_PATH + "/count") else "/v1/*"
        start_ns = exchange.started_at_ms * 1_000_000
        end_ns = start_ns + int(exchange.duration_s * 1e9)
        server_attributes: dict[str, str | int] = {
            "http.request.method": exchange.method,
            "http.route": route,
            "url.path": exchange.path,
            "http.response.status_code": exchange.status,
            "nexus.request_id": exchange.request_id,
            "nexus.outcome": exchange.outcome,
        }
        if exchange.domain:
            server_attributes["nexus.domain"] = exchange.domain
        if exchange.account_id:
            server_attributes["nexus.account_id"] = exchange.account_id
        parent = _propagator.extract(_carrier(exchange), getter=_getter)
        server = self._tracer.start_span(
            f"{exchange.method} {route}", context=parent, kind=SpanKind.SERVER, start_time=start_ns,
            attributes=server_attributes,
        )  # fmt: skip
        if exchange.status >= 500 or exchange.outcome == "truncated":
            server.set_status(Status(StatusCode.ERROR, exchange.error))
        gen_ai = self._gen_ai_attributes(exchange, facts) if is_messages else {}
        if exchange.upstream_started_s is not None and exchange.outcome != "rejected":
            self._upstream_span(exchange, server, start_ns, end_ns, gen_ai)
        server.end(end_time=end_ns)
        self._record_metrics(exchange, route, facts, gen_ai)

    def _upstream_span(
        self, exchange: Exchange, server: trace.Span, start_ns: int, end_ns: int, gen_ai: dict[str, str | int]
    ) -> None:
        assert exchange.upstream_started_s is not None
        name = f"chat {exchange.requested_model}" if gen_ai else f"{exchange.method} upstream"
        client = self._tracer.start_span(
            name,
            context=trace.set_span_in_context(server),
            kind=SpanKind.CLIENT,
            start_time=start_ns + int(exchange.upstream_started_s * 1e9),
            attributes={"server.address": self._upstream_host, "http.response.status_code": exchange.status, **gen_ai},
        )
        if is_error(exchange.status, exchange.outcome):
            client.set_status(Status(StatusCode.ERROR, exchange.error))
            client.set_attribute("error.type", str(exchange.status) if exchange.status >= 400 else exchange.outcome)
        client.end(end_time=end_ns)

    @staticmethod
    def _gen_ai_attributes(exchange: Exchange, facts: ResponseFacts | None) -> dict[str, str | int]:
        attributes: dict[str, str | int] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic"}
        if exchange.requested_model:
            attributes["gen_ai.request.model"] = exchange.requested_model
        if facts is None:
            return attributes
        if facts.model:
            attributes["gen_ai.response.model"] = facts.model
        if facts.message_id:
            attributes["gen_ai.response.id"] = facts.message_id
        if facts.stop_reason:
            attributes["gen_ai.response.finish_reasons"] = facts.stop_reason
        if facts.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = facts.usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = facts.usage.output_tokens
            attributes["gen_ai.usage.cache_creation.input_tokens"] = facts.usage.cache_creation_input_tokens
            attributes["gen_ai.usage.cache_read.input_tokens"] = facts.usage.cache_read_input_tokens
        return attributes

    def _record_metrics(
        self, exchange: Exchange, route: str, facts: ResponseFacts | None, gen_ai: dict[str, str | int]
    ) -> None:
        http: dict[str, str | int] = {
            "http.request.method": exchange.method,
            "http.route": route,
            "http.response.status_code": exchange.status,
        }
        self._requests.add(1, {**http, "nexus.outcome": exchange.outcome})
        self._server_duration.record(exchange.duration_s, http)
        if not gen_ai or exchange.outcome == "rejected":
            return
        model = {key: value for key, value in gen_ai.items() if key in _MODEL_KEYS}
        self._operation_duration.record(exchange.duration_s - (exchange.upstream_started_s or 0.0), model)
        if exchange.stream and exchange.first_byte_s is not None and exchange.upstream_started_s is not None:
            self._first_token.record(exchange.first_byte_s - exchange.upstream_started_s, model)
        if facts is not None and facts.usage is not None:
            self._tokens.record(facts.usage.input_tokens, {**model, "gen_ai.token.type": "input"})
            self._tokens.record(facts.usage.output_tokens, {**model, "gen_ai.token.type": "output"})


_MODEL_KEYS = frozenset(
    {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model"}
)


def _carrier(exchange: Exchange) -> dict[str, str]:
    carrier = {}
    for name in (b"traceparent", b"tracestate"):
        value = header_value(exchange.request_headers, name)
        if value is not None:
            carrier[name.decode()] = value.decode("latin-1")
    return carrier


def _facts(exchange: Exchange) -> ResponseFacts | None:
    body = decoded_body(exchange.response_body, header_value(exchange.response_headers, b"content-encoding"))
    if body is None:
        return None
    return facts_from_sse(body) if exchange.stream else facts_from_message(body)
