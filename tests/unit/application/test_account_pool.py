"""The pool weighs our own count of an account's output when Anthropic's headers say nothing of
its window (or less than we know)."""

from __future__ import annotations

import itertools

from nexus.application.account_pool import AccountPool, Member
from nexus.domain.rate_limits import UnifiedRateLimit
from tests.fakes import FixedClock

A = Member(name="acct-a", account_id="acc_a", window_output_tokens=10_000)
B = Member(name="acct-b", account_id="acc_b", window_output_tokens=10_000)
_SESSIONS = itertools.count()


def chosen_for_new_sessions(pool: AccountPool, members: list[Member], count: int = 12) -> set[str]:
    """The accounts ``count`` sessions never seen before went to (a session sticks to its account)."""
    return {pool.choose("team.example", f"session-{next(_SESSIONS)}", members).account_id for _ in range(count)}


def test_without_headers_new_sessions_leave_the_account_our_count_shows_used() -> None:
    pool = AccountPool(clock=FixedClock(), rest_percent=95)
    assert chosen_for_new_sessions(pool, [A, B]) == {"acc_a", "acc_b"}, "equal headroom: shared"

    pool.on_output("acc_a", 4_000)  # 40 % of its 5-hour budget

    assert chosen_for_new_sessions(pool, [A, B]) == {"acc_b"}


def test_the_higher_of_the_header_and_our_count_decides() -> None:
    pool = AccountPool(clock=FixedClock(), rest_percent=95)
    chosen_for_new_sessions(pool, [A, B], 2)
    stale = UnifiedRateLimit(five_hour_utilization=0.05)
    pool.observe("acc_a", stale, status=200)
    pool.observe("acc_b", UnifiedRateLimit(five_hour_utilization=0.30), status=200)
    pool.on_output("acc_a", 6_000)  # a burst the header has not caught up with: 60 %

    assert chosen_for_new_sessions(pool, [A, B]) == {"acc_b"}


def test_our_count_covers_the_trailing_five_hours_only() -> None:
    clock = FixedClock()
    pool = AccountPool(clock=clock, rest_percent=95)
    chosen_for_new_sessions(pool, [A, B], 2)
    pool.on_output("acc_a", 5_000)
    clock.advance(4 * 3600)
    pool.on_output("acc_a", 1_000)
    assert pool.own_share(A, clock.now_ms() / 1000) == 0.6

    clock.advance(3600 + 60)

    assert pool.own_share(A, clock.now_ms() / 1000) == 0.1, "the first 5,000 left the window"
    assert chosen_for_new_sessions(pool, [A, B]) == {"acc_a", "acc_b"}, "10 % is near enough to 0 %"


def test_without_a_budget_our_count_weighs_nothing_and_other_accounts_are_not_tracked() -> None:
    pool = AccountPool(clock=FixedClock(), rest_percent=95)
    unbudgeted = [Member(name="x", account_id="acc_x"), Member(name="y", account_id="acc_y")]
    chosen_for_new_sessions(pool, unbudgeted, 2)
    pool.on_output("acc_x", 10**9)
    pool.on_output("team.example", 500)  # an account outside every pool

    assert chosen_for_new_sessions(pool, unbudgeted) == {"acc_x", "acc_y"}
    assert "team.example" not in pool.accounts
