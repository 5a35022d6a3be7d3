import json
from typing import Any

from nexus.application.exchange import Exchange
from nexus.application.notifications.notifier import SlackNotifier
from nexus.application.notifications.telemetry_endpoint import TelemetryPoster
from nexus.application.recording.row import measure
from nexus.domain.slack_message import SlackTarget


class Poster:
    """A BackgroundPoster that keeps what it is handed."""

    def __init__(self) -> None:
        self.offered: list[dict[str, Any]] = []
        self.sent = self.failed = self.dropped = 0
        self.queued = 0

    def offer(self, payload: dict[str, Any]) -> None:
        self.offered.append(payload)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class Targets:
    async def target_for(self, domain: str | None) -> SlackTarget | None:
        return None


class Sender:
    async def post(self, url: str, payload: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent in these tests")


class Clock:
    def monotonic(self) -> float:
        return 0.0


def exchange(
    *, path: str = "/v1/messages", status: int = 200, output_tokens: int = 5, text: str = "hi", turn: bool = False
) -> Exchange:
    """A Messages exchange; ``turn``: a conversation turn (two system blocks, as Claude Code's
    main agent sends), else a side call."""
    body: dict[str, Any] = {
        "model": "claude-sonnet-5",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": text}],
    }
    if turn:
        body["system"] = [{"type": "text", "text": "You are Claude Code."}, {"type": "text", "text": "Be brief."}]
    answer = {
        "type": "message",
        "model": "claude-sonnet-5",
        "content": [],
        "usage": {"input_tokens": 3, "output_tokens": output_tokens},
    }
    return Exchange(
        request_id=f"00000000-0000-4000-8000-{output_tokens:012d}",
        method="POST" if path == "/v1/messages" else "GET",
        path=path,
        query_string=b"",
        domain="d",
        request_headers=[],
        request_body=json.dumps(body).encode() if path == "/v1/messages" else None,
        status=status,
        response_chunks=[json.dumps(answer).encode()],
        started_at_ms=1_800_000_000_000,
    )


def test_the_telemetry_summary_is_handed_over_as_the_exchange_is_observed() -> None:
    poster = Poster()
    telemetry = TelemetryPoster(poster=poster)
    first, second = exchange(output_tokens=7), exchange(output_tokens=11)

    measure(first)  # the counting observer measures first, as in the proxy
    telemetry.observe(first)
    measure(second)
    telemetry.observe(second)

    assert [(p["requestId"], p["outputTokens"]) for p in poster.offered] == [
        (first.request_id, 7),
        (second.request_id, 11),
    ]
    assert telemetry.counters()["queued"] == 0


def test_slack_queues_only_errors_and_messages_that_may_open_a_turn() -> None:
    slack = SlackNotifier(targets=Targets(), sender=Sender(), clock=Clock())

    slack.observe(exchange(path="/v1/models"))  # no error, no words: nothing to say
    slack.observe(exchange(text="   ", turn=True))  # no words of the user's
    slack.observe(exchange(text="what changed?"))  # new words, but a side call (a title, say)
    assert slack.queued == 0

    slack.observe(exchange(path="/v1/models", status=500))
    slack.observe(exchange(text="what changed?", turn=True))
    assert slack.queued == 2
