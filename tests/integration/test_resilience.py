"""Retries, the circuit breaker and health, through the running proxy."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.integration.conftest import sdk
from tests.support.dashboard import sign_in
from tests.support.database import wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

BODY = {"model": "claude-sonnet-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


def messages(fake: FakeAnthropic) -> list[object]:
    return [request for request in fake.requests if request.path == "/v1/messages"]


def test_an_overloaded_answer_is_retried_before_the_client_sees_anything(
    fake: FakeAnthropic, proxy: RunningProxy
) -> None:
    fake.fail_next(529, 503, headers={"retry-after": "0"})
    message = sdk(proxy.url).messages.create(**BODY)  # type: ignore[call-overload]
    assert message.content[0].text
    attempts = messages(fake)
    assert len(attempts) == 3
    assert len({request.body for request in attempts}) == 1, "every attempt sends the same bytes"  # type: ignore[attr-defined]


def test_retries_stop_at_the_limit_and_the_last_answer_is_relayed(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(UPSTREAM_MAX_RETRIES="1")
    fake.fail_next(500, 529, 500, headers={"retry-after": "0"})
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk(proxy.url).messages.create(**BODY)  # type: ignore[call-overload]
    assert caught.value.status_code == 529
    assert len(messages(fake)) == 2


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {}),  # a subscription limit can last hours: Claude Code decides
        (529, {"retry-after": "3600"}),  # too long to wait on the client's behalf
        (503, {"x-should-retry": "false"}),
        (400, {}),
    ],
)
def test_some_failures_are_answered_at_once(
    fake: FakeAnthropic, proxy: RunningProxy, status: int, headers: dict[str, str]
) -> None:
    fake.fail_next(status, headers=headers)
    response = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS)
    assert response.status_code == status
    assert len(messages(fake)) == 1
    for name, value in headers.items():
        assert response.headers[name] == value


def test_connection_failures_are_retried_then_reported(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(UPSTREAM_MAX_RETRIES="2")
    response = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers={**HEADERS, SCENARIO_HEADER: "disconnect"})
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    assert len(messages(fake)) == 3


def test_streamed_uploads_are_never_replayed(fake: FakeAnthropic, proxy: RunningProxy) -> None:
    fake.fail_next(500)
    with pytest.raises(anthropic.InternalServerError):
        sdk(proxy.url).beta.files.upload(file=("a.txt", b"hello", "text/plain"))
    assert [request.path for request in fake.requests] == ["/v1/files"]


def test_the_circuit_opens_after_repeated_failures_and_a_probe_closes_it(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy]
) -> None:
    proxy = start_proxy(UPSTREAM_MAX_RETRIES="0", CIRCUIT_BREAKER_FAILURES="2", CIRCUIT_BREAKER_RESET_SECONDS="0.5")
    fake.fail_next(400, 404, 400)  # client errors say nothing about upstream's health
    for _ in range(3):
        assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS).status_code in (400, 404)
    fake.fail_next(500, 529)
    assert [httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS).status_code for _ in range(2)] == [
        500,
        529,
    ]
    seen = len(fake.requests)
    refused = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS)
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "overloaded_error"
    assert refused.headers["retry-after"] == "1", "the seconds left before a probe, rounded up"
    assert len(fake.requests) == seen, "an open circuit does not call upstream"
    health = httpx.get(f"{proxy.url}/health")
    assert health.status_code == 503
    assert health.json()["checks"]["upstream"]["circuit"] == "open"

    time.sleep(0.6)
    assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS).status_code == 200
    assert httpx.get(f"{proxy.url}/health").json()["checks"]["upstream"]["circuit"] == "closed"


def test_health_endpoints(proxy: RunningProxy, credentials_dir: object) -> None:
    health = httpx.get(f"{proxy.url}/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["service"], body["draining"]) == ("ok", "claude-nexus", False)
    assert body["checks"]["upstream"]["circuit"] == "closed"
    assert body["checks"]["credentials"] == {
        "status": "ok",
        "directory": str(credentials_dir),
        "files": 0,
        "invalid": [],
    }
    assert httpx.get(f"{proxy.url}/health/live").json() == {"alive": True}
    ready = httpx.get(f"{proxy.url}/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert "x-request-id" in ready.headers


def test_a_client_leaving_mid_upload_is_its_own_business_not_upstreams(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    """Through the real upstream transport: the exchange is recorded as the client's, and the
    breaker counts nothing. (Here the disconnect listener happens to win the race against the
    transport's own error; the unit test of the endpoint pins the case where it does not.)"""
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), CIRCUIT_BREAKER_FAILURES="1")
    host, port = proxy.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/files HTTP/1.1\r\n"
        f"host: {host}:{port}\r\n"
        f"x-api-key: {DEFAULT_API_KEY}\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "content-type: application/octet-stream\r\n"
        "content-length: 1000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as client:
        client.sendall(head.encode() + b"x" * 70_000)
        time.sleep(0.5)  # the proxy is connected upstream and streaming the body
    rows = wait_for_rows(database_url, 1)
    assert [(row["path"], row["state"]) for row in rows] == [("/v1/files", "client_cancelled")]
    assert httpx.get(f"{proxy.url}/health").json()["checks"]["upstream"]["circuit"] == "closed"
    assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS).status_code == 200


def test_each_retried_attempt_is_recorded_and_shown(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    key = "dashboard-key-for-attempts"
    proxy = start_proxy(DATABASE_URL=database_url, NEXUS_DATA_DIR=str(tmp_path / "data"), DASHBOARD_API_KEY=key)
    fake.fail_next(529, 503, headers={"retry-after": "0"})
    raw = sdk(proxy.url).messages.with_raw_response.create(**BODY)  # type: ignore[call-overload]
    answered = raw.headers["x-request-id"]
    dropped = httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers={**HEADERS, SCENARIO_HEADER: "disconnect"})
    assert dropped.status_code == 502
    rows = {str(row["id"]): row for row in wait_for_rows(database_url, 2)}

    stored = json.loads(rows[answered]["upstream_attempts"])
    assert [(a["number"], a["status"], a["reason"], a["circuit"]) for a in stored] == [
        (1, 529, "answered 529", "closed"),
        (2, 503, "answered 503", "closed"),
    ]
    assert all(a["wait_s"] >= 0 for a in stored)
    failed = json.loads(rows[dropped.headers["x-request-id"]]["upstream_attempts"])
    assert [(a["number"], a["status"]) for a in failed] == [(1, None), (2, None)], "the third attempt is the answer"
    assert all("Upstream is unreachable" in a["reason"] for a in failed), failed
    plain = sdk(proxy.url).messages.with_raw_response.create(**BODY)  # type: ignore[call-overload]
    wait_for_rows(database_url, 3)

    api = httpx.get(f"{proxy.url}/api/requests/{answered}", headers={"x-api-key": key}).json()
    assert [a["status"] for a in api["upstream_attempts"]] == [529, 503]
    plain_detail = httpx.get(f"{proxy.url}/api/requests/{plain.headers['x-request-id']}", headers={"x-api-key": key})
    assert plain_detail.json()["upstream_attempts"] == [], "one attempt: nothing to show"
    client = sign_in(proxy.url, key)
    try:
        page = client.get(f"/dashboard/requests/{answered}").text
    finally:
        client.close()
    assert "Upstream attempts" in page
    assert page.count('data-attempt="') == 2
    assert "answered 529" in page


def _detail_and_page(proxy: RunningProxy, key: str, request_id: str) -> tuple[dict[str, object], str]:
    detail = httpx.get(f"{proxy.url}/api/requests/{request_id}", headers={"x-api-key": key})
    assert detail.status_code == 200, detail.text
    client = sign_in(proxy.url, key)
    try:
        page = client.get(f"/dashboard/requests/{request_id}").text
    finally:
        client.close()
    return detail.json(), page


def _attempt_rows(page: str) -> list[str]:
    """The request page's attempts table, one text per row (tags dropped)."""
    body = page.split('data-table="attempts"', 1)[1].split("</table>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in body.split("<tr data-attempt=")[1:]]


def test_the_circuit_state_is_recorded_when_it_opens_refuses_and_probes(
    fake: FakeAnthropic, start_proxy: Callable[..., RunningProxy], database_url: str, tmp_path: Path
) -> None:
    key = "dashboard-key-for-the-circuit"
    proxy = start_proxy(
        DATABASE_URL=database_url,
        NEXUS_DATA_DIR=str(tmp_path / "data"),
        DASHBOARD_API_KEY=key,
        UPSTREAM_MAX_RETRIES="1",
        CIRCUIT_BREAKER_FAILURES="2",
        CIRCUIT_BREAKER_RESET_SECONDS="1",
    )

    def post() -> httpx.Response:
        return httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=HEADERS)

    fake.fail_next(500, 529, headers={"retry-after": "0"})
    opened = post()  # the retry's 529 is the second failure in a row: it opens the circuit
    assert opened.status_code == 529
    seen = len(fake.requests)
    refused = post()
    assert refused.status_code == 503
    assert len(fake.requests) == seen
    time.sleep(1.1)
    fake.fail_next(503, headers={"retry-after": "0"})
    failed_probe = post()  # the probe fails: open again, and its retry is refused
    assert failed_probe.status_code == 503
    time.sleep(1.1)
    probe = post()
    assert probe.status_code == 200
    plain = post()
    assert plain.status_code == 200
    ids = [r.headers["x-request-id"] for r in (opened, refused, failed_probe, probe, plain)]
    rows = {str(row["id"]): row for row in wait_for_rows(database_url, 5)}
    assert set(ids) <= rows.keys()

    def stored(request_id: str) -> list[tuple[object, ...]]:
        attempts = json.loads(rows[request_id]["upstream_attempts"] or "[]")
        return [(a["number"], a["status"], a["reason"], a["circuit"], a["sent"], a["answered"]) for a in attempts]

    assert stored(ids[0]) == [
        (1, 500, "answered 500", "closed", True, False),
        (2, 529, "answered 529 (relayed)", "open", True, True),
    ]
    assert stored(ids[1]) == [(1, None, "circuit open: not sent", "open", False, False)]
    assert rows[ids[1]]["status"] == 503
    assert stored(ids[2]) == [
        (1, 503, "answered 503", "open", True, False),
        (2, None, "circuit open: not sent", "open", False, False),
    ]
    assert stored(ids[3]) == [(1, 200, "half-open probe answered 200", "closed", True, True)]
    assert stored(ids[4]) == [], "circuit closed and the first attempt answered: nothing recorded"
    account = rows[ids[4]]["account_id"]
    assert account, "the exchange names its credential"
    for request_id in ids[:4]:
        attempts = json.loads(rows[request_id]["upstream_attempts"])
        assert {a["account_id"] for a in attempts} == {account}, "each attempt names the credential it went with"
    assert rows[ids[1]]["account_id"] == account, "a refused exchange names the credential of its attempt"

    detail, page = _detail_and_page(proxy, key, ids[1])
    assert detail["upstream_attempts"] == [
        {
            "number": 1,
            "status": None,
            "reason": "circuit open: not sent",
            "wait_s": 0.0,
            "account_id": account,
            "circuit": "open",
            "sent": False,
            "answered": False,
        }
    ]
    assert _attempt_rows(page) == [f'"1" data-sent="false"> 1 not sent circuit open: not sent 0 ms {account} open']
    assert "1, circuit open after the last" in page
    assert "The circuit breaker refused 1 attempt: not sent upstream (status 503)." in page

    detail, page = _detail_and_page(proxy, key, ids[3])
    assert [(a["status"], a["circuit"], a["answered"]) for a in detail["upstream_attempts"]] == [(200, "closed", True)]
    assert _attempt_rows(page) == [
        f'"1" data-answered="true"> 1 200 the answer half-open probe answered 200 0 ms {account} closed'
    ]
    assert "1, circuit closed after the last" in page

    _, page = _detail_and_page(proxy, key, ids[0])
    assert "2, circuit open after the last" in page
    _, page = _detail_and_page(proxy, key, ids[4])
    assert 'data-table="attempts"' not in page
    assert "1, circuit closed" in page, "no entries: one attempt, circuit closed, by convention"

    schema = httpx.get(f"{proxy.url}/docs/openapi.json", headers={"x-api-key": key}).json()
    properties = schema["components"]["schemas"]["UpstreamAttempt"]["properties"]
    assert {"account_id", "circuit", "sent", "answered"} <= properties.keys()
    assert "not called" in properties["sent"]["description"]
