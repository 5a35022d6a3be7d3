"""The budget of the property tests and of the API fuzzing, in one place.

``make test`` runs them on a small, fixed budget: every run draws the same inputs
(``derandomize``), so a failure in CI is a failure on every machine, and the whole fuzzing
stays within a minute or two on two cores. To search harder, raise the budget from the
environment:

- ``NEXUS_FUZZ_EXAMPLES=2000``: examples per property (and per API operation) instead of
  each test's default;
- ``NEXUS_FUZZ_RANDOM=1``: fresh random inputs on each run instead of the fixed ones.

Nothing is written to an example database either way (no ``.hypothesis`` directory in the
working copy): a failure prints the smallest input it found, which is what goes into a
regression test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES_VARIABLE = "NEXUS_FUZZ_EXAMPLES"
RANDOM_VARIABLE = "NEXUS_FUZZ_RANDOM"


def budget(default: int) -> int:
    """Examples to run: ``default`` unless ``NEXUS_FUZZ_EXAMPLES`` says otherwise."""
    given = os.environ.get(EXAMPLES_VARIABLE, "").strip()
    return int(given) if given else default


def randomised() -> bool:
    return os.environ.get(RANDOM_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


def fuzz_settings(default_examples: int) -> settings:
    """Hypothesis settings for one property: bounded, reproducible, no deadline.

    No deadline: on two shared cores a single slow example (a garbage collection, another test
    process) is not a bug, and a flaky deadline would be.
    """
    return settings(
        max_examples=budget(default_examples),
        deadline=None,
        derandomize=not randomised(),
        database=None,
        # Large generated values (nested JSON, long byte strings) are the point here.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
