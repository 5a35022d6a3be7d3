"""The runaway guard: a Claude Code session (or one of its sub-agents) sending requests far
faster than people work, or burning a large share of its account's 5-hour window within a few
minutes, is a loop or a fan-out gone wrong. It is slowed (each request over the threshold is
held: ``60 / threshold`` seconds for the request rate, so the session goes on at that pace;
``TOKEN_PACE_S`` while it is over its share of the window) or refused (429 until it is back
under), and an alert says so once per session per ``ALERT_EVERY_S``.

A session is ``x-claude-code-session-id`` (and ``x-claude-code-agent-id`` for a sub-agent);
requests without one are not watched.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from nexus.application.limits.limiter import RateLimited
from nexus.application.ports.system import Clock
from nexus.domain.traffic_limits import Measure, Refusal, SlidingMinute

log = logging.getLogger(__name__)

TOKEN_PACE_S = 10.0
ALERT_EVERY_S = 600.0
_MAX_SESSIONS = 20_000
_MAX_PENDING = 100_000

Action = Literal["slow", "refuse"]


@dataclass(frozen=True, slots=True)
class Runaway:
    domain: str
    session: str
    agent: str | None
    request_id: str
    reason: str
    action: Action


@dataclass(frozen=True, slots=True)
class _Over:
    reason: str
    measure: Measure
    retry_after_s: float  # until the session is back under, with nothing more sent
    pace_s: float  # how long a slowed request is held


@dataclass(slots=True)
class _Session:
    requests: SlidingMinute = field(default_factory=SlidingMinute)
    output: deque[tuple[float, int]] = field(default_factory=deque)
    output_total: int = 0
    alerted_at: float = float("-inf")


class RunawayGuard:
    def __init__(
        self,
        *,
        clock: Clock,
        requests_per_minute: int | None,
        window_percent: float | None,
        minutes: float,
        action: Action,
        alert: Callable[[Runaway], None] | None = None,
    ) -> None:
        self._clock = clock
        self._rpm = requests_per_minute
        self._share = window_percent / 100 if window_percent is not None else None
        self._span_s = minutes * 60
        self._action = action
        self._alert = alert
        self._sessions: dict[tuple[str, str | None], _Session] = {}
        self._pending: dict[str, _Session] = {}

    @property
    def configured(self) -> bool:
        return self._rpm is not None or self._share is not None

    def check(
        self, request_id: str, domain: str, session: str | None, agent: str | None, window_tokens: int | None
    ) -> float:
        """Seconds to hold the request (0: none); ``RateLimited`` when it is refused."""
        if session is None:
            return 0.0
        key = (session, agent)
        state = self._sessions.pop(key, None) or _Session()
        if len(self._sessions) >= _MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[key] = state  # the most recently seen last
        now = self._clock.monotonic()
        over = self._over(state, now, window_tokens)
        if over is not None:
            self._raise_alarm(state, now, Runaway(domain, session, agent, request_id, over.reason, self._action))
            if self._action == "refuse":
                refusal = Refusal(
                    scope="session",
                    name=f"session {session}",
                    measure=over.measure,
                    limit=self._rpm or 0,
                    used=0,
                    retry_after_s=max(1, round(over.retry_after_s)),
                    reason=f"Session {session} sent {over.reason}",
                )
                raise RateLimited(refusal)
        state.requests.add(now)
        if self._share is not None:  # its output will count towards the session's share
            if len(self._pending) >= _MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[request_id] = state
        return over.pace_s if over is not None else 0.0

    def on_output(self, request_id: str, output_tokens: int) -> None:
        state = self._pending.pop(request_id, None)
        if state is None or not output_tokens:
            return
        state.output.append((self._clock.monotonic(), output_tokens))
        state.output_total += output_tokens

    def _over(self, state: _Session, now: float, window_tokens: int | None) -> _Over | None:
        if self._rpm is not None:
            sent = state.requests.total(now)
            if sent >= self._rpm:
                return _Over(
                    reason=f"{sent} requests in the last minute (the guard's threshold is {self._rpm})",
                    measure="requests",
                    retry_after_s=state.requests.seconds_until_below(now, self._rpm),
                    pace_s=60 / self._rpm,
                )
        if self._share is not None and window_tokens:
            while state.output and now - state.output[0][0] > self._span_s:
                state.output_total -= state.output.popleft()[1]
            if state.output_total >= self._share * window_tokens:
                oldest = state.output[0][0] if state.output else now
                return _Over(
                    reason=f"{state.output_total:,} output tokens in {self._span_s / 60:g} minutes, over"
                    f" {self._share:.0%} of the account's 5-hour window ({window_tokens:,})",
                    measure="tokens",
                    retry_after_s=max(1.0, self._span_s - (now - oldest)),
                    pace_s=TOKEN_PACE_S,
                )
        return None

    def _raise_alarm(self, state: _Session, now: float, runaway: Runaway) -> None:
        if now - state.alerted_at < ALERT_EVERY_S:
            return
        state.alerted_at = now
        who = f"session {runaway.session}" + (f" (agent {runaway.agent})" if runaway.agent else "")
        done = "slowed" if runaway.action == "slow" else "refused"
        log.warning("Runaway guard: %s on %s %s: %s", who, runaway.domain, done, runaway.reason)
        if self._alert is not None:
            self._alert(runaway)
