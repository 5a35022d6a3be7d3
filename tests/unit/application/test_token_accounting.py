import asyncio
import json
import logging
import re
from collections.abc import Callable
from decimal import Decimal

import pytest

from nexus.application.exchange import Exchange
from nexus.application.recording.recorder import ExchangeRecorder
from nexus.application.recording.row import ExchangeRow, build_row
from nexus.application.token_accounting import (
    CountingObserver,
    TokenAccounting,
    report_forever,
    token_report_lifetime,
)
from nexus.domain.pricing import cost_usd
from nexus.domain.usage import TokenUsage
from tests.fakes import FixedClock, FlakyStore, MemoryJournal, MemoryQuarantine
from tests.unit.application.test_recorder import no_wait, settle

START_MS = 1_800_000_000_000
CLAUDE_CODE_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an interactive CLI tool."},
]
UNIFIED = "anthropic-ratelimit-unified-"


def _sse(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def stream(
    *, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0, tools: int = 0
) -> bytes:
    start_usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": 1,
    }
    events = [
        _sse("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-5",
                                                                      "usage": start_usage}}),
    ]  # fmt: skip
    for index in range(tools):
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": "Read", "input": {}}
        events.append(
            _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        )
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                               "usage": {**start_usage, "output_tokens": output_tokens}})
    )  # fmt: skip
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return b"".join(events)


def messages_exchange(
    n: int,
    *,
    domain: str = "team.example",
    account_id: str | None = "acc_team",
    system: object = CLAUDE_CODE_SYSTEM,
    text: str = "hello",
    response: bytes | None = None,
    status: int = 200,
    rate_limit: dict[str, str] | None = None,
    at_ms: int | None = None,
) -> Exchange:
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": text}],
    }
    if system is not None:
        body["system"] = system
    headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
    headers += [(f"{UNIFIED}{name}".encode(), value.encode()) for name, value in (rate_limit or {}).items()]
    return Exchange(
        request_id=f"00000000-0000-4000-8000-{n:012d}",
        method="POST",
        path="/v1/messages",
        query_string=b"",
        domain=domain,
        account_id=account_id,
        requested_model="claude-sonnet-5",
        stream=True,
        request_headers=[(b"host", domain.encode())],
        request_body=json.dumps(body).encode(),
        status=status,
        outcome="complete" if status < 400 else "upstream_error",
        response_headers=headers,
        response_chunks=[response if response is not None else stream(input_tokens=10, output_tokens=20)],
        started_at_ms=at_ms if at_ms is not None else START_MS + n,
    )


def models_exchange(n: int) -> Exchange:
    return Exchange(
        request_id=f"00000000-0000-4000-8000-{n:012d}",
        method="GET",
        path="/v1/models",
        query_string=b"",
        domain="team.example",
        request_headers=[],
        started_at_ms=START_MS + n,
        status=200,
    )


def row(exchange: Exchange) -> ExchangeRow:
    return build_row(exchange, store_bodies=False)


@pytest.fixture
def accounting() -> TokenAccounting:
    return TokenAccounting(clock=FixedClock(START_MS))


def test_each_row_adds_to_its_domain(accounting: TokenAccounting) -> None:
    accounting.on_row(row(messages_exchange(1, response=stream(input_tokens=10, output_tokens=20, tools=2))))
    accounting.on_row(
        row(messages_exchange(2, response=stream(input_tokens=5, output_tokens=7, cache_read=100, cache_write=30)))
    )
    accounting.on_row(row(messages_exchange(3, system=None)))  # a side call: query_evaluation
    accounting.on_row(row(messages_exchange(4, system=None, text="quota")))
    accounting.on_row(row(models_exchange(5)))
    accounting.on_row(row(messages_exchange(6, domain="other.example", status=429, response=b"{}")))

    team = accounting.snapshot()["team.example"]
    assert (team.requests, team.inference, team.query_evaluation, team.quota, team.errors) == (5, 2, 1, 1, 0)
    assert team.tool_calls == 2
    assert (team.input_tokens, team.output_tokens) == (10 + 5 + 10 + 10, 20 + 7 + 20 + 20)
    assert (team.cache_read_input_tokens, team.cache_creation_input_tokens) == (100, 30)
    expected_cost = sum(
        (
            cost_usd("claude-sonnet-5", TokenUsage(input_tokens=i, output_tokens=o, cache_read_input_tokens=r,
                                                   cache_creation_input_tokens=w)) or Decimal(0)
            for i, o, r, w in ((10, 20, 0, 0), (5, 7, 100, 30), (10, 20, 0, 0), (10, 20, 0, 0))
        ),
        Decimal(0),
    )  # fmt: skip
    assert team.cost_usd == expected_cost
    assert team.last_updated_ms == START_MS + 5
    other = accounting.snapshot("other.example")["other.example"]
    assert (other.requests, other.errors, other.input_tokens, other.output_tokens) == (1, 1, 0, 0)


def test_a_snapshot_is_a_copy_and_an_unknown_domain_is_empty(accounting: TokenAccounting) -> None:
    accounting.on_row(row(messages_exchange(1)))
    taken = accounting.snapshot()
    taken["team.example"].requests = 99
    assert accounting.snapshot()["team.example"].requests == 1
    assert accounting.snapshot("nobody.example") == {}


def test_the_report_comes_only_after_new_traffic_in_the_originals_layout() -> None:
    clock = FixedClock(START_MS)
    accounting = TokenAccounting(clock=clock)
    assert accounting.take_report() is None
    accounting.on_row(row(messages_exchange(1, response=stream(input_tokens=1234, output_tokens=5678))))
    accounting.on_row(row(messages_exchange(2, domain="b.example")))
    clock.advance(3 * 3600 + 125)
    report = accounting.take_report()
    assert report is not None
    lines = report.splitlines()
    assert lines[0] == "Token Usage Report - 2027-01-15 11:02:05 UTC (uptime 3h 2m 5s)"
    width = len(lines[1])
    assert lines[1] == "=" * width == lines[-1]
    assert lines[3] == "-" * width == lines[-3]
    assert re.split(r"\s{2,}", lines[2]) == [
        "Domain", "Reqs", "Query", "Infer", "Tools", "Input Tok", "Output Tok", "Total Tok",
        "Quota", "Errors", "Cache Write", "Cache Read", "Cost USD",
    ]  # fmt: skip
    assert lines[4].split()[:2] == ["b.example", "1"]
    assert lines[5].split()[:8] == ["team.example", "1", "0", "1", "0", "1,234", "5,678", "6,912"]
    assert lines[-2].split()[:2] == ["TOTAL", "2"]
    assert all(len(line) <= width for line in lines[2:]), "columns fit between the rules"
    assert accounting.take_report() is None, "nothing new since"
    accounting.on_row(row(models_exchange(3)))
    assert accounting.take_report() is not None


async def test_the_report_is_logged_at_each_interval_with_traffic(
    accounting: TokenAccounting, caplog: pytest.LogCaptureFixture
) -> None:
    ticks: list[float] = []

    async def sleep(seconds: float) -> None:
        ticks.append(seconds)
        if len(ticks) == 2:
            accounting.on_row(row(messages_exchange(1)))
        if len(ticks) > 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    with (
        caplog.at_level(logging.INFO, logger="nexus.application.token_accounting"),
        pytest.raises(asyncio.CancelledError),
    ):
        await report_forever(accounting, 10, sleep=sleep)
    reports = [record for record in caplog.records if record.getMessage().startswith("Token Usage Report")]
    assert ticks == [10, 10, 10, 10]
    assert len(reports) == 1, "only the tick after the traffic reports"
    assert reports[0].levelno == logging.INFO
    assert "team.example" in reports[0].getMessage()


async def test_an_interval_of_zero_starts_no_report_task(accounting: TokenAccounting) -> None:
    before = asyncio.all_tasks()
    lifetime = token_report_lifetime(accounting, 0)
    await anext(lifetime)
    assert asyncio.all_tasks() == before
    with pytest.raises(StopAsyncIteration):
        await anext(lifetime)


async def test_the_report_task_ends_with_the_app(accounting: TokenAccounting) -> None:
    lifetime = token_report_lifetime(accounting, 10)
    await anext(lifetime)
    [task] = [task for task in asyncio.all_tasks() if task.get_name() == "token-report"]
    with pytest.raises(StopAsyncIteration):
        await anext(lifetime)
    assert task.cancelled()


def unified(status: str, utilization: str = "0.5") -> dict[str, str]:
    return {"status": status, "5h-status": status, "5h-utilization": utilization, "reset": "1790814600",
            "representative-claim": "five_hour"}  # fmt: skip


def test_a_warning_is_logged_once_per_change_into_an_alert_status(
    accounting: TokenAccounting, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = ["allowed", "allowed", "allowed_warning", "allowed_warning", "allowed_warning", "rejected", "rejected",
                "allowed", "allowed", "allowed_warning"]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="nexus.application.token_accounting"):
        for n, status in enumerate(statuses):
            accounting.on_row(row(messages_exchange(n, rate_limit=unified(status, "0.91"))))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert warnings[0].startswith("Anthropic reports account acc_team as allowed_warning")
    assert "5h 91% used (allowed_warning)" in warnings[0]
    assert "resets 2026-10-01T00:30:00Z" in warnings[0]
    assert warnings[1].startswith("Anthropic reports account acc_team as rejected")
    assert warnings[2].startswith("Anthropic reports account acc_team as allowed_warning")
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "allowed again" in r.getMessage()]
    assert len(infos) == 1
    assert accounting.rate_limits()["acc_team"].limit.status == "allowed_warning"


def test_accounts_are_watched_separately_and_late_answers_change_nothing(
    accounting: TokenAccounting, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nexus.application.token_accounting"):
        accounting.on_row(row(messages_exchange(5, rate_limit=unified("rejected"))))
        accounting.on_row(row(messages_exchange(3, rate_limit=unified("allowed"))))  # started earlier
        accounting.on_row(row(messages_exchange(6, rate_limit=unified("rejected"))))
        accounting.on_row(row(messages_exchange(7, account_id="acc_other", rate_limit=unified("rejected"))))
    warned = [record.getMessage().split(":")[0] for record in caplog.records]
    assert warned == [
        "Anthropic reports account acc_team as rejected",
        "Anthropic reports account acc_other as rejected",
    ]
    assert accounting.rate_limits()["acc_team"].seen_at.timestamp() * 1000 == START_MS + 6


def test_without_storage_the_observer_counts_the_same_figures(accounting: TokenAccounting) -> None:
    observer = CountingObserver(accounting)
    reference = TokenAccounting(clock=FixedClock(START_MS))
    exchanges = [
        messages_exchange(1, response=stream(input_tokens=3, output_tokens=4, tools=1, cache_read=9)),
        messages_exchange(2, system=None),
        models_exchange(3),
    ]
    for exchange in exchanges:
        observer.observe(exchange)
        reference.on_row(build_row(exchange, store_bodies=True))
    assert observer.needs_response_body
    assert accounting.snapshot() == reference.snapshot()


def test_the_observer_never_raises(accounting: TokenAccounting, caplog: pytest.LogCaptureFixture) -> None:
    broken = messages_exchange(1)
    broken.request_id = "broken-exchange"
    broken.status = None  # type: ignore[assignment]  # what no real exchange holds
    CountingObserver(accounting).observe(broken)
    assert accounting.snapshot() == {}
    assert "Cannot count exchange broken-exchange" in caplog.text


# The recorder's row hook: every exchange of this process heard exactly once, database or not.


def hooked_recorder(
    store: FlakyStore, journal: MemoryJournal, on_row: Callable[[ExchangeRow], None], *, queue_size: int = 100
) -> ExchangeRecorder:
    return ExchangeRecorder(
        store=store,
        journal=journal,
        quarantine=MemoryQuarantine(),
        store_bodies=True,
        queue_size=queue_size,
        batch_size=10,
        sleep=no_wait,
        on_row=on_row,
    )


async def test_the_recorder_hands_each_row_to_the_hook_once() -> None:
    heard: list[str] = []
    store, journal = FlakyStore(), MemoryJournal()
    sut = hooked_recorder(store, journal, lambda r: heard.append(str(r.id)))
    await sut.start()
    for n in range(25):
        sut.observe(messages_exchange(n))
    await settle()
    await sut.stop()
    assert sorted(heard) == sorted(store.rows)
    assert len(heard) == 25


async def test_during_an_outage_the_hook_hears_at_once_and_replays_do_not_repeat() -> None:
    heard: list[str] = []
    store, journal = FlakyStore(), MemoryJournal()
    sut = hooked_recorder(store, journal, lambda r: heard.append(str(r.id)))
    await sut.start()
    store.down = True
    for n in range(30):
        sut.observe(messages_exchange(n))
        await asyncio.sleep(0)
    await settle()
    assert store.rows == {}
    assert len(heard) == 30, "counted while the database is away"
    store.down = False
    sut.observe(messages_exchange(30))
    await settle()
    await sut.stop()
    assert len(store.rows) == 31
    assert sorted(heard) == sorted(store.rows), "each once"


async def test_exchanges_a_full_queue_journals_are_heard_when_replayed() -> None:
    heard: list[str] = []
    store, journal = FlakyStore(), MemoryJournal()
    journal.append([messages_exchange(100)])  # left by an earlier process: not counted here
    sut = hooked_recorder(store, journal, lambda r: heard.append(str(r.id)), queue_size=5)
    for n in range(8):
        sut.observe(messages_exchange(n))  # not started: three go straight to the journal
    assert heard == []
    await sut.start()  # replays the journal, then drains the queue
    await settle()
    await sut.stop()
    assert len(store.rows) == 9
    assert sorted(heard) == sorted(messages_exchange(n).request_id for n in range(8))


async def test_a_failing_hook_does_not_stop_recording(caplog: pytest.LogCaptureFixture) -> None:
    def explode(_: ExchangeRow) -> None:
        raise RuntimeError("boom")

    store, journal = FlakyStore(), MemoryJournal()
    sut = hooked_recorder(store, journal, explode)
    await sut.start()
    sut.observe(messages_exchange(1))
    await settle()
    await sut.stop()
    assert len(store.rows) == 1
    assert "The row listener failed" in caplog.text
