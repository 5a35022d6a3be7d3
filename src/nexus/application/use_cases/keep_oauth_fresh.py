"""Keep OAuth access tokens fresh: one refresh at a time, whoever asks."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import msgspec

from nexus.application.ports import Clock, CredentialStore, StoredCredential, TokenRefresher, TokenRefreshFailed
from nexus.domain.credentials import CredentialFileInvalid, OAuthTokens, apply_refresh
from nexus.domain.errors import AuthenticationFailed

log = logging.getLogger(__name__)

# What a refresh can fail with: the endpoint, the record, the file system, or the rules.
_REFRESH_FAULTS = (TokenRefreshFailed, CredentialFileInvalid, OSError, AuthenticationFailed)


class RefreshMetrics(msgspec.Struct, kw_only=True):
    """This process's OAuth refreshes since it started (the original's ``/oauth-metrics``)."""

    attempts: int = 0  # refreshes started (callers sharing one count once): successes + failures + active
    successes: int = 0
    failures: int = 0
    concurrent_waits: int = 0  # callers that joined a refresh already in flight
    total_refresh_ms: float = 0.0
    current_active_refreshes: int = 0
    current_failed_refreshes: int = 0  # credentials whose latest refresh failed


class KeepOAuthFresh:
    """Return usable OAuth tokens for a stored credential, refreshing them when due.

    Rules:
    - Due one minute before ``expiresAt``; a forced refresh ignores that.
    - One refresh per credential at a time: concurrent callers in this process share one
      attempt, and other processes wait on the store's exclusive lock, then re-read the record
      and use what the winner saved (compare-and-set on the access token).
    - Rotated refresh tokens are saved with the access token, atomically.
    - A failure is remembered for ``failure_cooldown_s``: callers in that window get the old
      token while it is still valid, else an authentication error, without a new attempt.
    """

    def __init__(
        self,
        *,
        store: CredentialStore,
        refresher: TokenRefresher,
        clock: Clock,
        failure_cooldown_s: float = 5.0,
    ) -> None:
        self._store = store
        self._refresher = refresher
        self._clock = clock
        self._cooldown = failure_cooldown_s
        self._inflight: dict[str, asyncio.Task[OAuthTokens]] = {}
        self._failed_at: dict[str, float] = {}
        self._metrics = RefreshMetrics()
        self.started_at = datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)

    def metrics(self) -> RefreshMetrics:
        return msgspec.structs.replace(
            self._metrics,
            current_active_refreshes=len(self._inflight),
            current_failed_refreshes=len(self._failed_at),
        )

    async def execute(self, stored: StoredCredential, *, force: bool = False) -> OAuthTokens:
        tokens = stored.credential.oauth
        if tokens is None:
            raise AuthenticationFailed(f"Credential for {stored.name} holds no OAuth tokens")
        if not force and not tokens.needs_refresh(self._clock.now_ms()):
            return tokens
        failed_at = self._failed_at.get(stored.location)
        if not force and failed_at is not None and self._clock.monotonic() - failed_at < self._cooldown:
            return self._fallback(stored.name, tokens, "the last refresh failed moments ago")
        task = self._inflight.get(stored.location)
        if task is not None:
            self._metrics.concurrent_waits += 1
        else:
            task = asyncio.create_task(self._refresh(stored, seen=tokens.access_token, force=force))
            self._inflight[stored.location] = task
            task.add_done_callback(lambda _: self._inflight.pop(stored.location, None))
        try:
            # Shielded: a client that goes away must not cancel the refresh others wait on.
            return await asyncio.shield(task)
        except _REFRESH_FAULTS as exc:
            if force:
                raise AuthenticationFailed(f"OAuth refresh for {stored.name} failed: {exc}") from None
            return self._fallback(stored.name, tokens, str(exc))

    async def _refresh(self, stored: StoredCredential, *, seen: str, force: bool) -> OAuthTokens:
        started = self._clock.monotonic()
        self._metrics.attempts += 1
        try:
            async with self._store.exclusive(stored.location):
                current = (await self._store.reload(stored.location)).credential.oauth
                if current is None:
                    raise AuthenticationFailed(f"Credential for {stored.name} no longer holds OAuth tokens")
                now = self._clock.now_ms()
                if current.access_token != seen and not current.needs_refresh(now):
                    return current  # another process refreshed while we waited for the lock
                if not force and not current.needs_refresh(now):
                    return current
                if not current.refresh_token:
                    raise AuthenticationFailed(
                        f"OAuth token for {stored.name} is due for refresh but has no refresh token"
                    )
                answer = await self._refresher.refresh(current.refresh_token)
                fresh = apply_refresh(current, answer, self._clock.now_ms())
                await self._store.save_oauth(stored.location, fresh)
        except _REFRESH_FAULTS as exc:
            self._failed_at[stored.location] = self._clock.monotonic()
            self._count(started, succeeded=False)
            log.error("OAuth refresh for %s failed: %s", stored.name, exc)
            raise
        except BaseException:
            self._count(started, succeeded=False)  # unforeseen, or cancelled at shutdown
            raise
        self._failed_at.pop(stored.location, None)
        self._count(started, succeeded=True)
        log.info("OAuth token for %s refreshed; valid until %s ms", stored.name, fresh.expires_at)
        return fresh

    def _count(self, started: float, *, succeeded: bool) -> None:
        """A refresh that ended; one that found tokens another process had just refreshed is a
        success too (its time includes the wait for that process's lock)."""
        if succeeded:
            self._metrics.successes += 1
        else:
            self._metrics.failures += 1
        self._metrics.total_refresh_ms += (self._clock.monotonic() - started) * 1000

    def _fallback(self, name: str, tokens: OAuthTokens, reason: str) -> OAuthTokens:
        """The current token while it is still valid; past expiry, an authentication error."""
        if tokens.is_expired(self._clock.now_ms()):
            raise AuthenticationFailed(f"OAuth token for {name} has expired and could not be refreshed: {reason}")
        return tokens
