"""The webhook child's HTTP/1.1 client against real servers on loopback: an aiohttp app (the
Slack receiver of the integration tests) and a raw socket server for what a framework will not
do on purpose (drop a kept connection, answer in chunks or until the close, never answer)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nexus.adapters.webhook_process.http1 import Http1Poster
from tests.support.slack_receiver import Answer, SlackReceiver

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawServer:
    """Reads each request whole (Content-Length bodies) and answers what ``answer`` gives for
    it: bytes to write, and whether to close the connection after them (None: say nothing)."""

    def __init__(self, answer: Callable[[int], tuple[bytes | None, bool]]) -> None:
        self._answer = answer
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopped = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.lower().split(b"\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
                self.requests.append((head, await reader.readexactly(length)))
                data, close = self._answer(len(self.requests))
                if data is None:
                    await self._stopped.wait()
                    break
                writer.write(data)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self, tls: ssl.SSLContext | None = None) -> AsyncIterator[RawServer]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._stopped.set()
            server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.sleep(0)  # the handlers see the close and end


def _always(data: bytes | None, *, close: bool = False) -> Callable[[int], tuple[bytes | None, bool]]:
    return lambda _: (data, close)


async def test_posts_share_one_kept_connection_and_carry_their_json_and_host() -> None:
    async with RawServer(_always(OK)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/services/telemetry?team=a", timeout_s=5)
        results = [await poster.post(json.dumps({"n": n}).encode()) for n in range(5)]
        await poster.close()

    assert results == [None] * 5
    assert server.connections == 1
    head, _ = server.requests[0]
    assert head.startswith(b"POST /services/telemetry?team=a HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in head
    assert b"Content-Type: application/json\r\n" in head
    assert [json.loads(body) for _, body in server.requests] == [{"n": n} for n in range(5)]


async def test_a_user_and_password_in_the_url_go_as_basic_authorization_not_in_the_host() -> None:
    async with RawServer(_always(OK)).running() as server:
        poster = Http1Poster(f"http://collector:p%40ss@127.0.0.1:{server.port}/t", timeout_s=5)
        said = await poster.post(b"{}")
        await poster.close()

    [(head, _)] = server.requests
    assert said is None
    assert b"Authorization: Basic Y29sbGVjdG9yOnBAc3M=\r\n" in head  # collector:p@ss
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in head


async def test_a_kept_connection_the_server_drops_unanswered_is_replaced_and_the_post_sent_again() -> None:
    # The second request meets a server letting its idle connection go: closed, no answer.
    async with RawServer(lambda n: (b"", True) if n == 2 else (OK, False)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=5)
        first = await poster.post(b'{"n": 1}')
        second = await poster.post(b'{"n": 2}')
        await poster.close()

    assert (first, second) == (None, None)
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 2}']


async def test_a_new_connection_dropped_unanswered_is_a_failure_not_a_loop() -> None:
    async with RawServer(_always(b"", close=True)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=5)
        said = await poster.post(b"{}")

    assert said == "the webhook cannot be reached (it closed the connection)"
    assert len(server.requests) == 1


async def test_a_connection_the_server_closed_after_answering_is_not_used_again() -> None:
    async with RawServer(lambda n: (OK, n == 1)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=5)
        first = await poster.post(b'{"n": 1}')
        await asyncio.sleep(0.05)  # the close is seen
        second = await poster.post(b'{"n": 2}')
        await poster.close()

    assert (first, second) == (None, None)
    assert [body for _, body in server.requests] == [b'{"n": 1}', b'{"n": 2}']


async def test_a_refusal_says_its_status_and_the_start_of_its_body_but_never_the_url() -> None:
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 300\r\n\r\n" + b"invalid_token " * 20 + b"x" * 20
    async with RawServer(_always(refusal)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/services/T1/B2/secret-path", timeout_s=5)
        said = await poster.post(b"{}")
        again = await poster.post(b"{}")  # the whole refusal was read: the connection carries on
        await poster.close()

    assert said is not None
    assert said.startswith("the webhook answered 403 'invalid_token invalid_token")
    assert len(said) < 150
    assert "secret-path" not in said
    assert again == said
    assert server.connections == 1


async def test_chunked_answers_and_answers_ended_by_the_close_are_read() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    until_close = b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nqueued"
    async with RawServer(lambda n: (chunked, False) if n == 1 else (until_close, True)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=5)
        results = [await poster.post(b"{}") for _ in range(3)]
        await poster.close()

    assert results == [None, None, None]
    assert server.connections == 2  # the close-delimited answer ended its connection


async def test_a_server_that_never_answers_times_out_and_the_next_post_gets_a_new_connection() -> None:
    async with RawServer(lambda n: (None, False) if n == 1 else (OK, False)).running() as server:
        poster = Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=1.0)
        silent = await poster.post(b"{}")
        answered = await poster.post(b"{}")
        await poster.close()

    assert silent == "the webhook cannot be reached (TimeoutError)"
    assert answered is None
    assert server.connections == 2


async def test_nothing_listening_and_a_garbled_answer_are_failures_in_words() -> None:
    async with RawServer(_always(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")).running() as server:
        garbled = await Http1Poster(f"http://127.0.0.1:{server.port}/t", timeout_s=5).post(b"{}")
    port = server.port  # closed now

    refused = await Http1Poster(f"http://127.0.0.1:{port}/t", timeout_s=5).post(b"{}")

    assert garbled == "the webhook cannot be reached (the webhook's answer is not HTTP/1.1)"
    assert refused == "the webhook cannot be reached (ConnectionRefusedError)"


async def test_the_slack_receiver_gets_each_post_and_its_scripted_status() -> None:
    with SlackReceiver() as receiver:
        receiver.script["/services/T/B/x"] = [Answer(status=429, retry_after="1")]
        poster = Http1Poster(receiver.webhook("T/B/x"), timeout_s=5)
        limited = await poster.post(b'{"text": "first"}')
        delivered = await poster.post(b'{"text": "second"}')
        await poster.close()
        received = receiver.received("T/B/x")

    assert limited == "the webhook answered 429 'rate_limited'"
    assert delivered is None
    assert received == [{"text": "second"}]


async def test_https_is_spoken_to_a_server_whose_certificate_is_trusted(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with RawServer(_always(OK)).running(tls=server_tls) as server:
        trusted = Http1Poster(f"https://127.0.0.1:{server.port}/t", timeout_s=5, ssl_context=client_tls)
        results = [await trusted.post(b"{}"), await trusted.post(b"{}")]
        await trusted.close()
        untrusted = await Http1Poster(f"https://127.0.0.1:{server.port}/t", timeout_s=5).post(b"{}")

    assert results == [None, None]
    assert len(server.requests) == 2  # the untrusted client sent nothing
    assert untrusted == "the webhook cannot be reached (SSLCertVerificationError)"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file
