"""HttpxUpstreamClient over httpx.MockTransport: bytes out, bytes back, faults as port errors."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest

from nexus.adapters.upstream.aiohttp_transport import proxy_for
from nexus.adapters.upstream.httpx_upstream import HttpxUpstreamClient
from nexus.application.ports import UpstreamRequest
from nexus.domain.errors import UpstreamTimeout, UpstreamUnavailable


class Seen:
    """What reached the transport."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []


def client(
    handler: Callable[[httpx.Request], Any], *, base_url: str = "https://api.example/", timeout_s: float = 600.0
) -> tuple[HttpxUpstreamClient, Seen]:
    seen = Seen()

    async def recording(request: httpx.Request) -> httpx.Response:
        seen.requests.append(request)
        seen.bodies.append(await request.aread())
        result = handler(request)
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[no-any-return]

    return HttpxUpstreamClient(transport=httpx.MockTransport(recording), base_url=base_url, timeout_s=timeout_s), seen


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"{}")


class ChunkStream(httpx.AsyncByteStream):
    """A response body arriving in given chunks, optionally failing after them."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


async def read_all(response: Any) -> list[bytes]:
    return [chunk async for chunk in response.iter_raw()]


async def test_method_path_and_query_go_out_exactly() -> None:
    sut, seen = client(ok, base_url="https://api.example/")
    target = "/v1/messages/count_tokens?beta=true&x=%2Fa%2Bb&empty="
    await sut.send(UpstreamRequest(method="POST", target=target, headers=[], body=b"{}"))
    (request,) = seen.requests
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/messages/count_tokens?beta=true&x=%2Fa%2Bb&empty="
    assert (request.url.scheme, request.url.host) == ("https", "api.example")


async def test_a_base_url_with_a_path_prefix_keeps_it() -> None:
    sut, seen = client(ok, base_url="http://gateway.internal:8080/anthropic/")
    await sut.send(UpstreamRequest(method="GET", target="/v1/models", headers=[], body=None))
    url = seen.requests[0].url
    assert (url.host, url.port, url.raw_path) == ("gateway.internal", 8080, b"/anthropic/v1/models")


async def test_headers_go_out_in_order_with_duplicates_and_nothing_invented() -> None:
    headers = [
        (b"x-api-key", b"sk-ant-api03-k"),
        (b"anthropic-version", b"2023-06-01"),
        (b"anthropic-beta", b"b1"),
        (b"anthropic-beta", b"b2"),
        (b"x-custom", b"Mixed Case Value"),
    ]
    sut, seen = client(ok)
    await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=headers, body=b"12345"))
    sent = seen.requests[0].headers.raw
    # httpx adds only what HTTP/1.1 requires; no user-agent, accept or accept-encoding.
    assert [(k.lower(), v) for k, v in sent if k.lower() not in (b"host", b"content-length")] == headers
    names = {k.lower() for k, _ in sent}
    assert names - {k for k, _ in headers} == {b"host", b"content-length"}
    assert seen.requests[0].headers["content-length"] == "5"


async def test_a_body_in_memory_goes_out_byte_for_byte() -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"\\u00e9\xc3\xa9 \\ud800"}]}'
    sut, seen = client(ok)
    await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=body))
    assert seen.bodies == [body]


async def test_a_streamed_body_goes_out_whole_with_its_declared_length() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"--boundary\r\n"
        yield b"file bytes\r\n"
        yield b"--boundary--\r\n"

    sut, seen = client(ok)
    headers = [(b"content-type", b"multipart/form-data; boundary=boundary"), (b"content-length", b"38")]
    await sut.send(UpstreamRequest(method="POST", target="/v1/files", headers=headers, body=upload()))
    assert seen.bodies == [b"--boundary\r\nfile bytes\r\n--boundary--\r\n"]
    assert "transfer-encoding" not in seen.requests[0].headers
    assert seen.requests[0].headers["content-length"] == "38"


@pytest.mark.parametrize(("timeout_s", "connect"), [(600.0, 10.0), (3.0, 3.0)])
async def test_the_timeout_bounds_every_phase_and_connecting_has_its_own_cap(timeout_s: float, connect: float) -> None:
    sut, seen = client(ok, timeout_s=timeout_s)
    await sut.send(UpstreamRequest(method="GET", target="/v1/models", headers=[], body=None))
    assert seen.requests[0].extensions["timeout"] == {
        "connect": connect,
        "read": timeout_s,
        "write": timeout_s,
        "pool": timeout_s,
    }


async def test_status_and_headers_come_back_raw_lowercased_in_order() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201,
            headers=[
                (b"Content-Type", b"text/event-stream"),
                (b"Set-Cookie", b"a=1"),
                (b"set-cookie", b"b=2"),
                (b"Request-Id", b"req_011"),
            ],
            content=b"",
        )

    sut, _ = client(answer)
    response = await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    assert response.status == 201
    assert response.headers[:4] == [
        (b"content-type", b"text/event-stream"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"request-id", b"req_011"),
    ]


async def test_the_body_streams_back_chunk_by_chunk() -> None:
    chunks = [b"event: message_start\n", b"data: {}\n\n", b"event: message_stop\ndata: {}\n\n"]
    stream = ChunkStream(chunks)
    sut, _ = client(lambda _: httpx.Response(200, stream=stream))
    response = await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    assert await read_all(response) == chunks


async def test_a_compressed_body_is_relayed_compressed() -> None:
    compressed = gzip.compress(b'{"type":"message","content":[]}' * 20)
    headers = [(b"content-encoding", b"gzip"), (b"content-length", str(len(compressed)).encode())]
    sut, _ = client(lambda _: httpx.Response(200, headers=headers, stream=ChunkStream([compressed])))
    response = await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    assert b"".join(await read_all(response)) == compressed
    assert (b"content-encoding", b"gzip") in response.headers


async def test_closing_the_response_closes_upstreams_stream() -> None:
    stream = ChunkStream([b"a", b"b"])
    sut, _ = client(lambda _: httpx.Response(200, stream=stream))
    response = await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    await response.aclose()
    assert stream.closed


def caused(error: httpx.TransportError, cause: BaseException) -> httpx.TransportError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailable),
        (httpx.ConnectTimeout("connect timed out"), UpstreamUnavailable),
        (httpx.RemoteProtocolError("server hung up"), UpstreamUnavailable),
        (httpx.ReadTimeout("read timed out"), UpstreamTimeout),
        (httpx.PoolTimeout("pool"), UpstreamTimeout),
        # The aiohttp transport labels a refused connection ConnectTimeout; its cause tells.
        (caused(httpx.ConnectTimeout("x"), ConnectionRefusedError(111, "refused")), UpstreamUnavailable),
        (caused(httpx.ConnectTimeout("x"), aiohttp.ConnectionTimeoutError()), UpstreamUnavailable),
        (caused(httpx.ReadTimeout("x"), aiohttp.ServerTimeoutError()), UpstreamTimeout),
        (caused(httpx.ReadTimeout("x"), TimeoutError()), UpstreamTimeout),
    ],
    ids=[
        "connect error",
        "connect timeout",
        "protocol error",
        "read timeout",
        "pool timeout",
        "refused labelled connect timeout",
        "aiohttp connect timeout",
        "aiohttp read timeout",
        "asyncio timeout",
    ],
)
async def test_transport_errors_before_the_answer_become_port_errors(
    error: httpx.TransportError, expected: type[Exception]
) -> None:
    sut, _ = client(lambda _: error)
    with pytest.raises(expected) as raised:
        await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    assert type(raised.value) is expected
    assert raised.value.__cause__ is None, "no transport internals leak into the client's error"


async def test_an_unreachable_upstream_names_the_cause() -> None:
    error = caused(httpx.ConnectTimeout("x"), ConnectionRefusedError(111, "refused"))
    sut, _ = client(lambda _: error)
    with pytest.raises(UpstreamUnavailable, match=r"unreachable \(ConnectionRefusedError\)"):
        await sut.send(UpstreamRequest(method="GET", target="/v1/models", headers=[], body=None))


@pytest.mark.parametrize(
    ("error", "expected", "wording"),
    [
        (httpx.ReadError("connection reset"), UpstreamUnavailable, "broke off"),
        (httpx.RemoteProtocolError("incomplete chunked read"), UpstreamUnavailable, "broke off"),
        (httpx.ReadTimeout("silence"), UpstreamTimeout, "went silent"),
    ],
)
async def test_a_body_that_breaks_off_yields_what_came_then_a_port_error(
    error: httpx.TransportError, expected: type[Exception], wording: str
) -> None:
    sut, _ = client(lambda _: httpx.Response(200, stream=ChunkStream([b"one", b"two"], error)))
    response = await sut.send(UpstreamRequest(method="POST", target="/v1/messages", headers=[], body=b"{}"))
    received: list[bytes] = []
    with pytest.raises(expected, match=wording) as raised:
        async for chunk in response.iter_raw():
            received.append(chunk)
    assert type(raised.value) is expected
    assert received == [b"one", b"two"]


def test_the_outbound_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://api.anthropic.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    proxy = proxy_for("https://api.anthropic.com")
    assert proxy is not None
    assert proxy.url == httpx.URL("http://corp-proxy:3128")
    assert proxy_for("http://plain.example") is None, "HTTPS_PROXY is for https:// upstreams only"
    monkeypatch.setenv("NO_PROXY", ".anthropic.com")
    assert proxy_for("https://api.anthropic.com") is None
