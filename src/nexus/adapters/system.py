"""The real clock and id source."""

from __future__ import annotations

import time
import uuid


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class Uuid4Ids:
    def new_id(self) -> str:
        return str(uuid.uuid4())
