"""AiohttpUpstreamClient against a raw HTTP/1.1 server on loopback: bytes out exactly as given,
bytes back exactly as sent, faults as port errors."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from nexus.adapters.upstream.aiohttp_upstream import (
    AiohttpUpstreamClient,
    AiohttpUpstreamResponse,
    open_upstream_session,
    proxy_for,
)
from nexus.application.ports import UpstreamRequest
from nexus.domain.errors import UpstreamTimeout, UpstreamUnavailable

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Reads each request whole (by its content-length or chunked body) and runs ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = asyncio.Event()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                body = b""
                lowered = head.lower()
                if b"content-length:" in lowered:
                    length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                elif b"transfer-encoding: chunked" in lowered:
                    while size := int((line := await reader.readline()).split(b";")[0], 16):
                        body += line + await reader.readexactly(size + 2)
                    body += line + await reader.readline()
                self.requests.append(head + body)
                await self.answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()


@asynccontextmanager
async def upstream(
    answer: Answer | bytes = OK, *, timeout_s: float = 600.0, prefix: str = ""
) -> AsyncIterator[tuple[AiohttpUpstreamClient, Server]]:
    async def fixed(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert isinstance(answer, bytes)
        writer.write(answer)
        await writer.drain()

    server = Server(fixed if isinstance(answer, bytes) else answer)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    async with open_upstream_session(max_connections=4) as session:
        base = f"http://127.0.0.1:{server.port}{prefix}"
        yield AiohttpUpstreamClient(session=session, base_url=base, timeout_s=timeout_s), server
    listening.close()


def post(
    target: str = "/v1/messages", *, headers: list[tuple[bytes, bytes]] | None = None, body: object = b"{}"
) -> UpstreamRequest:
    return UpstreamRequest(method="POST", target=target, headers=headers or [], body=body)  # type: ignore[arg-type]


async def read_all(response: AiohttpUpstreamResponse) -> list[bytes]:
    return [chunk async for chunk in response.iter_raw()]


def head_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n")[0].split(b"\r\n")


async def test_method_path_and_query_go_out_exactly_under_a_base_path() -> None:
    target = "/v1/messages/count_tokens?beta=true&x=%2Fa%2Bb&empty=&raw=a%20b"
    async with upstream(prefix="/anthropic/") as (client, server):
        response = await client.send(post(target))
        await read_all(response)
        await response.aclose()
    assert head_lines(server.requests[0])[0] == (
        b"POST /anthropic/v1/messages/count_tokens?beta=true&x=%2Fa%2Bb&empty=&raw=a%20b HTTP/1.1"
    )


async def test_headers_go_out_in_order_with_duplicates_and_nothing_invented() -> None:
    headers = [
        (b"x-api-key", b"sk-ant-api03-k"),
        (b"anthropic-version", b"2023-06-01"),
        (b"anthropic-beta", b"b1"),
        (b"anthropic-beta", b"b2"),
        (b"x-custom", b"Mixed Case Value"),
    ]
    async with upstream() as (client, server):
        await client.send(post(headers=headers, body=b"12345"))
    sent = [tuple(line.split(b": ", 1)) for line in head_lines(server.requests[0])[1:]]
    assert [
        (name.lower(), value) for name, value in sent if name.lower() not in (b"host", b"content-length")
    ] == headers
    assert {name.lower() for name, _ in sent} - {name for name, _ in headers} == {b"host", b"content-length"}
    assert (b"Content-Length", b"5") in sent
    assert server.requests[0].endswith(b"\r\n\r\n12345")


async def test_a_body_in_memory_goes_out_byte_for_byte() -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"\\u00e9\xc3\xa9 \\ud800"}]}'
    async with upstream() as (client, server):
        await client.send(post(body=body))
    assert server.requests[0].split(b"\r\n\r\n", 1)[1] == body


async def test_a_streamed_body_goes_out_whole_with_its_declared_length() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"--boundary\r\n"
        yield b"file bytes\r\n"
        yield b"--boundary--\r\n"

    headers = [(b"content-type", b"multipart/form-data; boundary=boundary"), (b"content-length", b"38")]
    async with upstream() as (client, server):
        await client.send(post("/v1/files", headers=headers, body=upload()))
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    assert body == b"--boundary\r\nfile bytes\r\n--boundary--\r\n"
    assert b"transfer-encoding" not in head.lower()


async def test_status_and_headers_come_back_raw_lowercased_in_order() -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: text/event-stream\r\nSet-Cookie: a=1\r\n"
        b"set-cookie: b=2\r\nRequest-Id: req_011\r\ncontent-length: 0\r\n\r\n"
    )
    async with upstream(answer) as (client, _):
        response = await client.send(post())
    assert response.status == 201
    assert response.headers[:4] == [
        (b"content-type", b"text/event-stream"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"request-id", b"req_011"),
    ]


async def test_the_body_streams_back_as_it_arrives_and_the_connection_is_kept() -> None:
    events = [b"event: message_start\ndata: {}\n\n", b"event: message_stop\ndata: {}\n\n"]
    got_first = asyncio.Event()

    async def stream(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(events[0]), events[0]))
        await writer.drain()
        await got_first.wait()  # the second event only once the first was read: no buffering
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(events[1]), events[1]))
        await writer.drain()

    async with upstream(stream) as (client, server):
        for _ in range(2):
            got_first.clear()
            response = await client.send(post())
            received = []
            async for chunk in response.iter_raw():
                received.append(chunk)
                got_first.set()
            await response.aclose()
            assert received == events
    assert server.connections == 1, "a response read to its end gives its connection back"


async def test_a_compressed_body_is_relayed_compressed() -> None:
    compressed = gzip.compress(b'{"type":"message","content":[]}' * 20)
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (
        len(compressed),
        compressed,
    )
    async with upstream(answer) as (client, _):
        response = await client.send(post())
        assert b"".join(await read_all(response)) == compressed
    assert (b"content-encoding", b"gzip") in response.headers


async def test_closing_an_unread_response_closes_the_connection() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read(1)  # never more to send: waits for the client to hang up

    async with upstream(endless) as (client, server):
        response = await client.send(post())
        await response.aclose()
        await asyncio.wait_for(server.closed.wait(), 5)  # upstream sees the client go


async def test_an_unreachable_upstream_names_the_cause() -> None:
    spare = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = spare.sockets[0].getsockname()[1]
    spare.close()
    await spare.wait_closed()
    async with open_upstream_session(max_connections=1) as session:
        client = AiohttpUpstreamClient(session=session, base_url=f"http://127.0.0.1:{port}", timeout_s=5)
        with pytest.raises(UpstreamUnavailable, match=r"unreachable \(ConnectionRefusedError\)") as raised:
            await client.send(post())
    assert raised.value.__cause__ is None, "no transport internals leak into the client's error"


async def hangs_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def never_answers(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(hangs_up, UpstreamUnavailable), (never_answers, UpstreamTimeout)],
    ids=["hangs up", "silent"],
)
async def test_faults_before_the_answer_become_port_errors(answer: Answer, expected: type[Exception]) -> None:
    async with upstream(answer, timeout_s=0.3) as (client, _):
        with pytest.raises(expected) as raised:
            await client.send(post())
    assert type(raised.value) is expected
    assert raised.value.__cause__ is None


async def breaks_off(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


async def goes_silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n")
    await writer.drain()
    await asyncio.sleep(30)


@pytest.mark.parametrize(
    ("answer", "expected", "wording"),
    [(breaks_off, UpstreamUnavailable, "broke off"), (goes_silent, UpstreamTimeout, "went silent")],
    ids=["breaks off", "goes silent"],
)
async def test_a_body_that_breaks_off_yields_what_came_then_a_port_error(
    answer: Answer, expected: type[Exception], wording: str
) -> None:
    async with upstream(answer, timeout_s=0.3) as (client, _):
        response = await client.send(post())
        received: list[bytes] = []
        with pytest.raises(expected, match=wording) as raised:
            async for chunk in response.iter_raw():
                received.append(chunk)
        await response.aclose()
    assert type(raised.value) is expected
    assert received == [b"one"]


def test_the_outbound_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://api.anthropic.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy:3128")
    assert proxy_for("https://api.anthropic.com") == "http://corp-proxy:3128"
    assert proxy_for("http://plain.example") is None, "HTTPS_PROXY is for https:// upstreams only"
    monkeypatch.setenv("NO_PROXY", ".anthropic.com")
    assert proxy_for("https://api.anthropic.com") is None
