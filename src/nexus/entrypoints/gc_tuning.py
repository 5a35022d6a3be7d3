"""Garbage-collector settings for a long-running server.

Measured with the benchmark at 32 concurrent clients: with CPython's defaults, collections
that walk every object allocated at start-up (framework, container, modules) put 60-70 ms
pauses into the proxy's p99 and cost a fifth of its throughput. Freezing what exists once the
app has started takes those objects out of every later collection (p99 16 ms). A larger
first-generation threshold on top made no measurable difference, so it stays at the default.
"""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Call once the app is fully started (every worker process does)."""
    gc.collect()
    gc.freeze()
