"""The raw ASGI proxy endpoint, built by the app's own start-up from the container, driven by
scripted ``receive``/``send`` callables; the httpx client is replaced by a scripted upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers

from nexus.application.exchange import Exchange
from nexus.application.ports import UpstreamRequest
from nexus.domain.errors import UpstreamTimeout, UpstreamUnavailable
from nexus.entrypoints.container import Container, build_container
from nexus.entrypoints.http.app import _ProxyRoute
from nexus.entrypoints.http.asgi_io import AbortResponse, ClientGone
from nexus.entrypoints.http.proxy_endpoint import ProxyEndpoint
from nexus.entrypoints.settings import Settings
from tests.fakes import FakeRefresher, FixedClock, InMemoryCredentialStore
from tests.unit.scripted_upstream import ScriptedResponse, ScriptedUpstream

REQUEST_ID = "6f1c3a52-0000-4000-8000-000000000001"
DEFAULT_KEY = "sk-ant-api03-proxy-default"
BODY = b'{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],"stream":true}'


class FixedIds:
    def new_id(self) -> str:
        return REQUEST_ID


class Collected:
    """The exchange observer: keeps every finished exchange, bodies included."""

    needs_response_body = True

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def observe(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    @property
    def only(self) -> Exchange:
        (exchange,) = self.exchanges
        return exchange


class ScriptedClient:
    """An ASGI client: ``receive`` hands out the request messages, then waits until the client
    leaves (``leave()``) to report ``http.disconnect``, as a server does. ``send`` keeps what the
    proxy sends; ``leave_after_body_chunks`` leaves once that many body chunks came."""

    def __init__(self, *messages: dict[str, Any], leave_after_body_chunks: int | None = None) -> None:
        self._messages = list(messages)
        self._gone = asyncio.Event()
        self._leave_after = leave_after_body_chunks
        self.sent: list[dict[str, Any]] = []
        self.receives = 0

    def leave(self) -> None:
        self._gone.set()

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        if self._messages:
            return self._messages.pop(0)
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        assert not self._gone.is_set(), "nothing is sent to a client that has left"
        self.sent.append(message)
        if self._leave_after is not None and len(self.body_chunks) >= self._leave_after:
            self.leave()

    @property
    def start(self) -> dict[str, Any]:
        assert self.sent[0]["type"] == "http.response.start"
        return self.sent[0]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.start["headers"])

    @property
    def body_chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m["body"]]

    @property
    def ended_cleanly(self) -> bool:
        last = self.sent[-1]
        return last["type"] == "http.response.body" and last.get("more_body", False) is False

    def json(self) -> Any:
        return json.loads(b"".join(self.body_chunks))


def body(chunk: bytes, *, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": chunk, "more_body": more}


def scope(
    path: str = "/v1/messages",
    *,
    method: str = "POST",
    query: bytes = b"beta=true",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers if headers is not None else [(b"host", b"team.example:3000")],
    }


class Proxy:
    def __init__(self, endpoint: ProxyEndpoint, upstream: ScriptedUpstream, observer: Collected) -> None:
        self.endpoint = endpoint
        self.upstream = upstream
        self.observer = observer

    async def serve(self, request_scope: dict[str, Any], client: ScriptedClient) -> None:
        await asyncio.wait_for(self.endpoint(request_scope, client.receive, client.send), timeout=5)


@pytest.fixture
def container() -> Iterator[Container]:
    settings = Settings(
        claude_api_key=DEFAULT_KEY,
        max_request_size=1024,
        storage_enabled=False,
        upstream_max_retries=0,
        circuit_breaker_failures=1,
        circuit_breaker_reset_seconds=30,
    )
    container = build_container(settings)
    container.clock.override(providers.Object(FixedClock()))
    container.ids.override(providers.Object(FixedIds()))
    container.credential_store.override(providers.Object(InMemoryCredentialStore()))
    container.token_refresher.override(providers.Object(FakeRefresher()))
    yield container
    container.reset_singletons()


async def proxy_for(container: Container, upstream: ScriptedUpstream) -> Proxy:
    """The endpoint exactly as the app builds it at start-up, with the httpx client replaced."""
    observer = Collected()
    container.http_upstream.override(providers.Object(upstream))
    container.exchange_observer.override(providers.Object(observer))
    route = _ProxyRoute(container, container.settings())
    await route.start()
    assert route.endpoint is not None
    return Proxy(route.endpoint, upstream, observer)


def sse(*events: str) -> list[bytes]:
    return [f"event: {name}\ndata: {{}}\n\n".encode() for name in events]


SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_up_1")]


async def test_a_stream_is_relayed_chunk_by_chunk_and_recorded_complete(container: Container) -> None:
    chunks = sse("message_start", "content_block_delta", "message_stop")
    proxy = await proxy_for(container, ScriptedUpstream(ScriptedResponse(200, SSE_HEADERS, chunks)))
    client = ScriptedClient(body(BODY[:20], more=True), body(BODY[20:]))
    await proxy.serve(scope(), client)

    assert client.start["status"] == 200
    assert client.headers[b"content-type"] == b"text/event-stream"
    assert client.headers[b"x-request-id"] == REQUEST_ID.encode()
    assert client.body_chunks == chunks
    assert client.ended_cleanly
    (request,) = proxy.upstream.requests
    assert request.target == "/v1/messages?beta=true"
    assert proxy.upstream.bodies == [BODY]
    assert (b"x-api-key", DEFAULT_KEY.encode()) in request.headers
    assert proxy.upstream.responses[0].closed
    exchange = proxy.observer.only
    assert (exchange.outcome, exchange.status, exchange.error) == ("complete", 200, None)
    assert (exchange.requested_model, exchange.stream, exchange.domain) == ("claude-sonnet-4-5", True, "team.example")
    assert exchange.request_body == BODY
    assert exchange.response_chunks == chunks


async def test_a_client_leaving_mid_stream_cancels_upstream_and_is_recorded_client_cancelled(
    container: Container,
) -> None:
    never = asyncio.Event()
    chunks = sse("message_start", "content_block_delta")
    proxy = await proxy_for(container, ScriptedUpstream(ScriptedResponse(200, SSE_HEADERS, chunks, hold=never)))
    client = ScriptedClient(body(BODY), leave_after_body_chunks=2)

    await proxy.serve(scope(), client)  # returns: no error escapes to the server

    assert client.body_chunks == chunks
    assert not client.ended_cleanly, "no clean end is sent to a client that left"
    assert proxy.upstream.responses[0].closed, "upstream's response is released at once"
    exchange = proxy.observer.only
    assert exchange.outcome == "client_cancelled"
    assert exchange.status == 200
    assert exchange.response_chunks == chunks


async def test_a_client_leaving_before_upstream_answers_cancels_the_request(container: Container) -> None:
    upstream = ScriptedUpstream(ScriptedResponse(200), gate=asyncio.Event())
    proxy = await proxy_for(container, upstream)
    client = ScriptedClient(body(BODY))
    client.leave()

    await proxy.serve(scope(), client)

    assert upstream.calls == 1
    assert upstream.cancelled == 1
    assert client.sent == []
    assert proxy.observer.only.outcome == "client_cancelled"


async def test_a_client_leaving_while_sending_its_body_never_reaches_upstream(container: Container) -> None:
    upstream = ScriptedUpstream(ScriptedResponse(200))
    proxy = await proxy_for(container, upstream)
    client = ScriptedClient(body(BODY[:10], more=True), {"type": "http.disconnect"})

    await proxy.serve(scope(), client)

    assert upstream.calls == 0
    assert client.sent == []
    exchange = proxy.observer.only
    assert (exchange.outcome, exchange.status) == ("client_cancelled", 0)


def assert_anthropic_error(client: ScriptedClient, status: int, error_type: str) -> dict[str, Any]:
    assert client.start["status"] == status
    assert client.headers[b"content-type"] == b"application/json"
    assert client.headers[b"x-request-id"] == REQUEST_ID.encode()
    assert client.ended_cleanly
    document: dict[str, Any] = client.json()
    assert document["type"] == "error"
    assert document["error"]["type"] == error_type
    assert isinstance(document["error"]["message"], str)
    assert document["error"]["message"]
    assert document["request_id"] == REQUEST_ID
    assert client.headers[b"content-length"] == str(len(b"".join(client.body_chunks))).encode()
    return document


async def test_a_declared_body_over_the_limit_gets_413_unread(container: Container) -> None:
    upstream = ScriptedUpstream(ScriptedResponse(200))
    proxy = await proxy_for(container, upstream)
    headers = [(b"host", b"team.example"), (b"content-length", b"1025")]
    client = ScriptedClient(body(b"x" * 1025))

    await proxy.serve(scope(headers=headers), client)

    document = assert_anthropic_error(client, 413, "request_too_large")
    assert "1025" in document["error"]["message"]
    assert client.receives == 0, "the body is refused before it is read"
    assert upstream.calls == 0
    exchange = proxy.observer.only
    assert (exchange.outcome, exchange.status) == ("rejected", 413)
    assert exchange.error is not None
    assert exchange.error.startswith("request_too_large: ")


async def test_an_undeclared_body_growing_over_the_limit_gets_413(container: Container) -> None:
    upstream = ScriptedUpstream(ScriptedResponse(200))
    proxy = await proxy_for(container, upstream)
    headers = [(b"host", b"team.example"), (b"transfer-encoding", b"chunked")]
    client = ScriptedClient(body(b"x" * 600, more=True), body(b"x" * 600, more=True), body(b"x" * 600))

    await proxy.serve(scope(headers=headers), client)

    assert_anthropic_error(client, 413, "request_too_large")
    assert upstream.calls == 0
    assert proxy.observer.only.outcome == "rejected"


async def test_a_body_exactly_at_the_limit_is_forwarded(container: Container) -> None:
    document = b'{"model":"m","messages":[]}'
    at_limit = document + b" " * (1024 - len(document))
    upstream = ScriptedUpstream(ScriptedResponse(200))
    proxy = await proxy_for(container, upstream)
    headers = [(b"host", b"team.example"), (b"content-length", b"1024")]
    client = ScriptedClient(body(at_limit[:512], more=True), body(at_limit[512:]))

    await proxy.serve(scope(headers=headers), client)

    assert client.start["status"] == 200
    assert upstream.bodies == [at_limit]


@pytest.mark.parametrize(
    ("failure", "recorded"),
    [(UpstreamUnavailable("connection reset"), "api_error: "), (UpstreamTimeout("silent"), "timeout_error: ")],
    ids=["connection drop", "silence"],
)
async def test_a_stream_upstream_breaks_off_is_cut_for_the_client_and_recorded_truncated(
    container: Container, failure: Exception, recorded: str
) -> None:
    chunks = sse("message_start", "content_block_delta")
    upstream = ScriptedUpstream(ScriptedResponse(200, SSE_HEADERS, chunks, fail_after=failure))
    proxy = await proxy_for(container, upstream)
    client = ScriptedClient(body(BODY))

    # Raising after the response started makes the server drop the connection (ADR 0001).
    with pytest.raises(AbortResponse):
        await proxy.serve(scope(), client)

    assert client.start["status"] == 200
    assert client.body_chunks == chunks
    assert not client.ended_cleanly, "a broken stream must never look complete"
    assert upstream.responses[0].closed
    exchange = proxy.observer.only
    assert exchange.outcome == "truncated"
    assert exchange.error is not None
    assert exchange.error.startswith(recorded)
    assert exchange.response_chunks == chunks


async def test_an_unreachable_upstream_is_502_then_the_open_circuit_is_503_without_calling_it(
    container: Container,
) -> None:
    upstream = ScriptedUpstream(UpstreamUnavailable("Upstream is unreachable (ConnectionRefusedError)"))
    proxy = await proxy_for(container, upstream)

    first = ScriptedClient(body(BODY))
    await proxy.serve(scope(), first)
    assert_anthropic_error(first, 502, "api_error")

    second = ScriptedClient(body(BODY))
    await proxy.serve(scope(), second)
    assert_anthropic_error(second, 503, "overloaded_error")
    assert second.headers[b"retry-after"] == b"30"
    assert upstream.calls == 1, "the open circuit answered without calling upstream"
    assert [(e.outcome, e.status) for e in proxy.observer.exchanges] == [("rejected", 502), ("rejected", 503)]


class AdapterLikeUpstream(ScriptedUpstream):
    """Reports a request body that fails while being sent as the httpx adapter over aiohttp
    does: aiohttp wraps the error in ClientConnectionError, which reaches the port as
    ``UpstreamUnavailable("Upstream is unreachable (ClientConnectionError)")``."""

    async def send(self, request: UpstreamRequest) -> ScriptedResponse:
        try:
            return await super().send(request)
        except ClientGone:
            raise UpstreamUnavailable("Upstream is unreachable (ClientConnectionError)") from None


async def test_a_client_leaving_mid_upload_is_recorded_client_cancelled_and_not_held_against_upstream(
    container: Container,
) -> None:
    upstream = AdapterLikeUpstream(ScriptedResponse(200))
    proxy = await proxy_for(container, upstream)  # the fixture's breaker opens on 1 failure
    headers = [(b"host", b"team.example"), (b"content-type", b"application/pdf"), (b"content-length", b"100")]
    leaving = ScriptedClient(body(b"%PDF-1.7 ", more=True), {"type": "http.disconnect"})

    await proxy.serve(scope("/v1/files", query=b"", headers=headers), leaving)

    next_client = ScriptedClient(body(BODY))
    await proxy.serve(scope(), next_client)
    assert [e.outcome for e in proxy.observer.exchanges] == ["client_cancelled", "complete"]
    assert next_client.start["status"] == 200, "one client leaving must not open the circuit for all"


async def test_a_fault_of_the_proxys_own_before_any_answer_is_a_500_in_anthropics_format(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug, not an upstream fault: with Litestar no longer in front of the route (ADR 21),
    # the endpoint itself must answer it as every other route's unexpected errors are.
    proxy = await proxy_for(container, ScriptedUpstream(RuntimeError("a bug in the proxy")))
    client = ScriptedClient(body(BODY))

    await proxy.serve(scope(), client)

    assert_anthropic_error(client, 500, "api_error")
    assert b"a bug" not in b"".join(client.body_chunks), "the cause stays in the log"
    assert "Unexpected error on POST /v1/messages" in caplog.text
    exchange = proxy.observer.only
    assert (exchange.outcome, exchange.status) == ("rejected", 500)
