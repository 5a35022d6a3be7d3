"""Choose the credential a request goes upstream with."""

from __future__ import annotations

import logging

from nexus.application.account_pool import AccountPool, Member
from nexus.application.ports import CredentialStore, StoredCredential
from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.domain.credentials import CredentialFileInvalid, secrets_match
from nexus.domain.errors import AuthenticationFailed
from nexus.domain.headers import RawHeaders, header_value
from nexus.domain.host import RequestHost
from nexus.domain.upstream_auth import ClientAuth, UpstreamAuth, default_auth

log = logging.getLogger(__name__)


class ResolveCredential:
    """Pick the upstream credential for a request.

    Priority: the domain's credential file, then the client's own ``authorization`` /
    ``x-api-key``, then the default key (``CLAUDE_API_KEY``). A domain file with a
    ``client_api_key`` admits only clients presenting that key (unless ``client_auth`` is
    off: ``ENABLE_CLIENT_AUTH=false``); a malformed file locks its domain out (401) rather than
    silently falling through to weaker credentials.
    """

    def __init__(
        self,
        *,
        store: CredentialStore,
        keep_fresh: KeepOAuthFresh,
        default_api_key: str | None,
        pool: AccountPool | None = None,
        client_auth: bool = True,
    ) -> None:
        self._store = store
        self._client_auth = client_auth
        self._keep_fresh = keep_fresh
        self._default_api_key = default_api_key or None
        self.pool = pool

    async def execute(
        self,
        host: RequestHost,
        client: ClientAuth,
        *,
        headers: RawHeaders | None = None,
        avoid: frozenset[str] = frozenset(),
    ) -> UpstreamAuth:
        """``headers``: the request's, whose session a pool keeps on one account (read only for a
        pool); ``avoid``: a pool's accounts not to use."""
        try:
            stored = await self._store.find(host.credential_names)
        except CredentialFileInvalid as exc:
            log.error("Credential file for %s is unusable: %s", host.domain, exc)
            raise AuthenticationFailed(f"The credential file for {host.domain} is invalid; see the proxy log") from None
        if stored is None:
            if client.present:
                return client.as_upstream(account_id=host.domain)
            if self._default_api_key:
                return default_auth(self._default_api_key, account_id=host.domain)
            raise AuthenticationFailed(
                f"No credential for {host.domain}: send an API key, or configure "
                f"{host.domain}.credentials.json or CLAUDE_API_KEY on the proxy"
            )
        credential = stored.credential
        if (
            self._client_auth
            and credential.client_api_key
            and not (
                secrets_match(client.bearer, credential.client_api_key)
                or secrets_match(client.api_key, credential.client_api_key)
            )
        ):
            raise AuthenticationFailed(f"Invalid or missing client API key for {host.domain}")
        budget = credential.limits
        limits = budget.traffic() if budget is not None else None
        window = budget.five_hour_output_tokens if budget is not None else None
        pooled = credential.type == "pool"
        if pooled:
            session = header_value(headers, b"x-claude-code-session-id") if headers else None
            session_id = session.decode("latin-1") if session else None
            stored, account_id = await self._pool_member(host, stored, session_id, avoid)
        else:
            account_id = credential.account_id or host.domain
        member = stored.credential
        if member.type == "api_key":
            secret = member.api_key or ""
        else:
            secret = (await self._keep_fresh.execute(stored)).access_token
        return UpstreamAuth(
            kind="oauth" if member.type == "oauth" else "api_key",
            secret=secret,
            source="domain_file",
            account_id=account_id,
            limits=limits,
            window_output_tokens=window,
            pooled=pooled,
        )

    async def _pool_member(
        self, host: RequestHost, pool: StoredCredential, session: str | None, avoid: frozenset[str]
    ) -> tuple[StoredCredential, str]:
        """The pool's account for this request, and its account id."""
        members: dict[str, StoredCredential] = {}
        for name in pool.credential.accounts or []:
            try:
                found = await self._store.find([name])
            except CredentialFileInvalid as exc:
                log.error("Account %s of the pool of %s is unusable: %s", name, host.domain, exc)
                continue
            if found is None or found.credential.type == "pool":
                log.error("Account %s of the pool of %s has no usable credential file", name, host.domain)
                continue
            members[found.credential.account_id or name] = found
        if not members or self.pool is None:
            raise AuthenticationFailed(f"The pool of {host.domain} has no usable account; see the proxy log")
        chosen = self.pool.choose(
            host.domain, session, [_member(account_id, found) for account_id, found in members.items()], avoid
        )
        return members[chosen.account_id], chosen.account_id


def _member(account_id: str, stored: StoredCredential) -> Member:
    limits = stored.credential.limits
    window = limits.five_hour_output_tokens if limits is not None else None
    return Member(name=stored.name, account_id=account_id, window_output_tokens=window)
