"""The composition root: the only module that names concrete adapters."""

from __future__ import annotations

import httpx
from dependency_injector import containers, providers

from nexus.adapters.credentials.file_store import FileCredentialStore
from nexus.adapters.credentials.oauth_refresher import HttpxTokenRefresher
from nexus.adapters.system import SystemClock, Uuid4Ids
from nexus.adapters.upstream.aiohttp_transport import open_aiohttp_transport
from nexus.adapters.upstream.httpx_upstream import HttpxUpstreamClient
from nexus.application.use_cases.forward_request import ForwardRequest
from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.application.use_cases.resolve_credential import ResolveCredential
from nexus.entrypoints.settings import Settings

OAUTH_HTTP_TIMEOUT_S = 30.0


class Container(containers.DeclarativeContainer):
    """Build one per app (or CLI command): resources live and die with it."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4Ids)

    upstream_transport = providers.Resource(
        open_aiohttp_transport, max_connections=settings.provided.upstream_max_connections
    )
    upstream = providers.Singleton(
        HttpxUpstreamClient,
        transport=upstream_transport,
        base_url=settings.provided.claude_api_base_url,
        timeout_s=settings.provided.upstream_timeout_s,
    )

    oauth_http = providers.Resource(httpx.AsyncClient, timeout=OAUTH_HTTP_TIMEOUT_S)
    token_refresher = providers.Singleton(
        HttpxTokenRefresher,
        client=oauth_http,
        token_url=settings.provided.claude_oauth_token_url,
        client_id=settings.provided.claude_oauth_client_id,
    )
    credential_store = providers.Singleton(FileCredentialStore, directory=settings.provided.credentials_dir)
    keep_oauth_fresh = providers.Singleton(
        KeepOAuthFresh, store=credential_store, refresher=token_refresher, clock=clock
    )
    resolve_credential = providers.Singleton(
        ResolveCredential,
        store=credential_store,
        keep_fresh=keep_oauth_fresh,
        default_api_key=settings.provided.claude_api_key,
    )
    forward_request = providers.Singleton(ForwardRequest, resolve_credential=resolve_credential, upstream=upstream)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
