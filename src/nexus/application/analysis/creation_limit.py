"""At most N analyses requested per domain per minute, in this process (a sliding window):
each costs model tokens, so a script cannot run up a bill through the API."""

from __future__ import annotations

from collections import deque

from nexus.application.ports.system import Clock

WINDOW_S = 60.0
_MAX_DOMAINS = 10_000


class CreationLimit:
    def __init__(self, *, per_minute: int, clock: Clock) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, domain: str) -> float | None:
        """None when admitted (and counted); else the seconds until the next is."""
        now = self._clock.monotonic()
        times = self._seen.pop(domain, None) or deque()
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if len(times) >= self._per_minute:
            self._seen[domain] = times
            return WINDOW_S - (now - times[0])
        times.append(now)
        if len(self._seen) >= _MAX_DOMAINS:
            self._seen.pop(next(iter(self._seen)))  # the least recently seen
        self._seen[domain] = times
        return None
