"""Analyses requested per domain per minute: a sliding window."""

from __future__ import annotations

import pytest

from nexus.application.analysis.creation_limit import CreationLimit
from tests.fakes import FixedClock


def test_each_domain_gets_its_quota_per_sliding_minute() -> None:
    clock = FixedClock()
    limit = CreationLimit(per_minute=2, clock=clock)
    assert limit.admit("team.example") is None
    clock.advance(10)
    assert limit.admit("team.example") is None
    assert limit.admit("team.example") == pytest.approx(50.0), "until the first one is a minute old"
    assert limit.admit("other.example") is None, "each domain its own"
    clock.advance(50)
    assert limit.admit("team.example") is None
    assert limit.admit("team.example") == pytest.approx(10.0)
