from typing import Any

import pytest

from nexus.application.use_cases.keep_oauth_fresh import KeepOAuthFresh
from nexus.application.use_cases.resolve_credential import ResolveCredential
from nexus.domain.errors import AuthenticationFailed
from nexus.domain.host import parse_host
from nexus.domain.upstream_auth import ClientAuth
from tests.fakes import FakeRefresher, FixedClock, InMemoryCredentialStore


def make(
    documents: dict[str, dict[str, Any]], default_api_key: str | None = None, *, client_auth: bool = True
) -> ResolveCredential:
    store = InMemoryCredentialStore(documents)
    keep_fresh = KeepOAuthFresh(store=store, refresher=FakeRefresher(), clock=FixedClock())
    return ResolveCredential(
        store=store, keep_fresh=keep_fresh, default_api_key=default_api_key, client_auth=client_auth
    )


API_KEY_FILE = {"type": "api_key", "api_key": "sk-ant-api03-file", "accountId": "acc_team"}


async def test_the_domain_file_wins_over_client_and_default_keys() -> None:
    sut = make({"team.example": API_KEY_FILE}, default_api_key="sk-default")
    auth = await sut.execute(parse_host("team.example:443"), ClientAuth(api_key="sk-client"))
    assert (auth.kind, auth.secret, auth.source, auth.account_id) == (
        "api_key",
        "sk-ant-api03-file",
        "domain_file",
        "acc_team",
    )


async def test_the_file_with_the_port_as_sent_is_tried_first() -> None:
    sut = make({"team.example:8443": {**API_KEY_FILE, "api_key": "port"}, "team.example": API_KEY_FILE})
    assert (await sut.execute(parse_host("team.example:8443"), ClientAuth())).secret == "port"
    assert (await sut.execute(parse_host("team.example:9000"), ClientAuth())).secret == "sk-ant-api03-file"


async def test_then_the_clients_own_key_then_the_default() -> None:
    sut = make({}, default_api_key="sk-default")
    client = await sut.execute(parse_host("other.example"), ClientAuth(bearer="sk-ant-oat01-client"))
    assert (client.source, client.kind, client.account_id) == ("client", "oauth", "other.example")
    default = await sut.execute(parse_host("other.example"), ClientAuth())
    assert (default.source, default.secret) == ("default", "sk-default")


async def test_no_credential_at_all_is_a_401() -> None:
    with pytest.raises(AuthenticationFailed, match=r"No credential for other\.example"):
        await make({}).execute(parse_host("other.example"), ClientAuth())


@pytest.mark.parametrize(
    "client",
    [
        ClientAuth(bearer="cnp_live_right"),
        ClientAuth(api_key="cnp_live_right"),
        ClientAuth(bearer="x", api_key="cnp_live_right"),
    ],
)
async def test_a_client_key_admits_clients_presenting_it_either_way(client: ClientAuth) -> None:
    sut = make({"team.example": {**API_KEY_FILE, "client_api_key": "cnp_live_right"}})
    assert (await sut.execute(parse_host("team.example"), client)).secret == "sk-ant-api03-file"


@pytest.mark.parametrize(
    "client", [ClientAuth(), ClientAuth(bearer="cnp_live_wrong"), ClientAuth(api_key="sk-ant-api03")]
)
async def test_a_client_key_refuses_everyone_else(client: ClientAuth) -> None:
    sut = make({"team.example": {**API_KEY_FILE, "client_api_key": "cnp_live_right"}}, default_api_key="sk-default")
    with pytest.raises(AuthenticationFailed, match="client API key"):
        await sut.execute(parse_host("team.example"), client)


async def test_with_client_auth_off_the_client_key_is_not_demanded() -> None:
    """ENABLE_CLIENT_AUTH=false, the original's default: the file's upstream key serves anyone."""
    sut = make({"team.example": {**API_KEY_FILE, "client_api_key": "cnp_live_right"}}, client_auth=False)
    assert (await sut.execute(parse_host("team.example"), ClientAuth())).secret == "sk-ant-api03-file"


async def test_a_malformed_file_locks_its_domain_out_instead_of_falling_through() -> None:
    sut = make({"team.example": {"type": "oauth"}}, default_api_key="sk-default")
    with pytest.raises(AuthenticationFailed, match="invalid"):
        await sut.execute(parse_host("team.example"), ClientAuth(api_key="sk-client"))


async def test_oauth_files_send_a_fresh_bearer() -> None:
    document = {"type": "oauth", "oauth": {"accessToken": "sk-ant-oat01-a", "expiresAt": 10**15}}
    auth = await make({"team.example": document}).execute(parse_host("team.example"), ClientAuth())
    assert (auth.kind, auth.secret, auth.account_id) == ("oauth", "sk-ant-oat01-a", "team.example")
