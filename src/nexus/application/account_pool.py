"""Several accounts behind one domain: which one a request goes with.

- A new session goes to the account with the most headroom in its 5-hour window (Anthropic's
  unified ``5h-utilization`` of the latest answer; for an API key, which has no such window,
  the share used of its tightest per-minute bucket). Our own count weighs in too: the output
  tokens this process relayed for the account over the trailing 5 hours against the member's
  ``limits.five_hour_output_tokens``, the higher of the two shares counting, so an account whose
  answers carry no header yet (or whose header is stale after a burst) is not taken for empty.
  An account with neither counts as empty.
  Accounts within ``NEAR`` of the best are equal, and among them the session's hash decides, so
  workers that see nearly the same figures send a session to the same account.
- A session sticks to its account while that one is usable: its prompt cache lives there.
- An account answered with a 429, reported ``rejected``, or past ``rest_percent`` of its window
  rests until the reset Anthropic gave (else its ``retry-after``, else ``REST_WITHOUT_RESET_S``); its
  sessions move. When every account rests, the one back soonest is used.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nexus.application.ports.credential_store import CredentialStore
from nexus.application.ports.system import Clock
from nexus.domain.key_rate_limits import KeyWindow
from nexus.domain.rate_limits import UnifiedRateLimit

log = logging.getLogger(__name__)

NEAR = 0.10
REST_WITHOUT_RESET_S = 300
WINDOW_S = 5 * 3600
_MAX_SESSIONS = 50_000


@dataclass(slots=True)
class AccountState:
    utilization: float | None = None  # of the 5-hour window, 0..1
    status: str | None = None
    rested_until: float = 0.0  # epoch seconds
    reason: str | None = None
    # Output tokens relayed for the account per minute: (minute's start, epoch s; tokens), oldest first.
    output: deque[tuple[float, int]] = field(default_factory=deque)
    output_total: int = 0


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # its credential file
    account_id: str
    window_output_tokens: int | None = None  # its own limits.five_hour_output_tokens


class AccountPool:
    def __init__(self, *, clock: Clock, rest_percent: float) -> None:
        self._clock = clock
        self._rest_share = rest_percent / 100
        self.accounts: dict[str, AccountState] = {}
        self._sessions: OrderedDict[tuple[str, str], str] = OrderedDict()  # (domain, session) -> account id

    def choose(
        self, domain: str, session: str | None, members: list[Member], avoid: frozenset[str] = frozenset()
    ) -> Member:
        now = self._clock.now_ms() / 1000
        usable = [m for m in members if m.account_id not in avoid and not self._resting(m.account_id, now)]
        if not usable:
            candidates = [m for m in members if m.account_id not in avoid] or members
            return min(candidates, key=lambda m: self._state(m.account_id).rested_until)
        key = (domain, session) if session else None
        if key is not None and (kept := self._sessions.get(key)) is not None:
            chosen = next((m for m in usable if m.account_id == kept), None)
            if chosen is not None:
                self._sessions.move_to_end(key)
                return chosen
        headroom = {m.account_id: self._headroom(m, now) for m in usable}
        best = max(headroom.values())
        near = [m for m in usable if headroom[m.account_id] >= best - NEAR]
        chosen = max(near, key=lambda m: _rank(session or "", m.account_id))
        if key is not None:
            self._sessions[key] = chosen.account_id
            self._sessions.move_to_end(key)
            if len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return chosen

    def observe(
        self,
        account_id: str,
        limit: UnifiedRateLimit | None,
        *,
        status: int,
        key_window: KeyWindow | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """What an answer from the account said of its window (``key_window``: an API key's)."""
        state = self._state(account_id)
        if limit is not None:
            if limit.five_hour_utilization is not None:
                state.utilization = limit.five_hour_utilization
            state.status = limit.status or state.status
        elif key_window is not None:
            state.utilization = key_window.utilization
        rejected = status == 429 or (limit is not None and "rejected" in (limit.status, limit.five_hour_status))
        full = state.utilization is not None and state.utilization >= self._rest_share
        if rejected or full:
            reset = (limit.five_hour_reset or limit.reset) if limit is not None else None
            reset = reset or (key_window.reset if key_window is not None else None)
            now = self._clock.now_ms() / 1000
            if reset and reset > now:
                until = float(reset)
            else:
                until = now + (retry_after_s if retry_after_s is not None else REST_WITHOUT_RESET_S)
            if until > state.rested_until:
                state.reason = (
                    "answered 429"
                    if status == 429
                    else ("rejected" if rejected else f"{state.utilization:.0%} of its 5-hour window")
                )
                log.warning("Account %s rests until %s: %s", account_id, _when(until), state.reason)
            state.rested_until = max(state.rested_until, until)

    def on_output(self, account_id: str, tokens: int) -> None:
        """Output tokens an exchange of the account used (once it is recorded)."""
        if tokens <= 0 or account_id not in self.accounts:
            return  # only accounts of a pool were chosen here, hence known
        state = self.accounts[account_id]
        now = self._clock.now_ms() / 1000
        minute = now // 60 * 60  # one entry per minute: 300 at most, whatever the traffic
        if state.output and state.output[-1][0] == minute:
            state.output[-1] = (minute, state.output[-1][1] + tokens)
        else:
            state.output.append((minute, tokens))
        state.output_total += tokens
        self._forget(state, now)

    def own_share(self, member: Member, now: float) -> float | None:
        """The share of the member's 5-hour budget its relayed output used, None without one."""
        if not member.window_output_tokens:
            return None
        state = self._state(member.account_id)
        self._forget(state, now)
        return state.output_total / member.window_output_tokens

    def _resting(self, account_id: str, now: float) -> bool:
        return self._state(account_id).rested_until > now

    def _headroom(self, member: Member, now: float) -> float:
        shares = [self._state(member.account_id).utilization, self.own_share(member, now)]
        known = [share for share in shares if share is not None]
        return 1.0 - max(known) if known else 1.0

    @staticmethod
    def _forget(state: AccountState, now: float) -> None:
        while state.output and state.output[0][0] <= now - WINDOW_S:
            state.output_total -= state.output.popleft()[1]

    def _state(self, account_id: str) -> AccountState:
        state = self.accounts.get(account_id)
        if state is None:
            state = self.accounts[account_id] = AccountState()
        return state


def _rank(session: str, account_id: str) -> bytes:
    """Rendezvous hashing: every worker ranks a session's accounts alike."""
    return hashlib.blake2b(f"{session}\x1f{account_id}".encode(), digest_size=8).digest()


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class MemberView:
    name: str
    account_id: str
    utilization: float | None
    rests_until: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class PoolView:
    domain: str
    members: list[MemberView]


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """An account's newest unified headers as recorded in the database."""

    utilization: float | None
    status: str | None
    resets_at: datetime | None


async def pool_views(
    store: CredentialStore,
    pool: AccountPool | None,
    *,
    now_s: float,
    recorded: Mapping[str, StoredWindow] | None = None,
) -> list[PoolView]:
    """Every pool in the credential store, each account with what this process last heard, or
    (a process that serves no traffic: ``--role dashboard``) with its ``recorded`` headers."""
    entries = {entry.name: entry.credential for entry in await store.list_all()}
    views = []
    for name, credential in sorted(entries.items()):
        if credential is None or credential.type != "pool":
            continue
        members = []
        for member in credential.accounts or []:
            found = entries.get(member)
            account_id = (found.account_id if found else None) or member
            if pool is None and recorded is not None:
                members.append(_recorded_member(member, account_id, recorded.get(account_id), now_s))
                continue
            state = pool.accounts.get(account_id) if pool is not None else None
            resting = state is not None and state.rested_until > now_s
            members.append(
                MemberView(
                    name=member,
                    account_id=account_id,
                    utilization=state.utilization if state else None,
                    rests_until=datetime.fromtimestamp(state.rested_until, UTC) if resting and state else None,
                    reason=state.reason if resting and state else None,
                )
            )
        views.append(PoolView(domain=name, members=members))
    return views


def _recorded_member(name: str, account_id: str, window: StoredWindow | None, now_s: float) -> MemberView:
    """A member as its latest recorded answer shows it: resting while Anthropic's reset is ahead
    of a ``rejected`` verdict (the proxies' own rest rules live in their memory)."""
    resting = (
        window is not None
        and window.status == "rejected"
        and window.resets_at is not None
        and window.resets_at.timestamp() > now_s
    )
    return MemberView(
        name=name,
        account_id=account_id,
        utilization=window.utilization if window is not None else None,
        rests_until=window.resets_at if resting and window is not None else None,
        reason="rejected" if resting else None,
    )
