import pytest

from nexus.domain.errors import InvalidRequest
from nexus.domain.host import parse_host


@pytest.mark.parametrize(
    ("header", "authority", "domain"),
    [
        ("api.example.com", "api.example.com", "api.example.com"),
        ("API.Example.COM:8443", "api.example.com:8443", "api.example.com"),
        ("localhost:3000", "localhost:3000", "localhost:3000"),
        ("localhost", "localhost", "localhost"),
        ("127.0.0.1:3000", "127.0.0.1:3000", "127.0.0.1:3000"),
        ("[::1]:3000", "[::1]:3000", "[::1]:3000"),
        ("team_proxy:3000", "team_proxy:3000", "team_proxy"),
        ("example.com.", "example.com", "example.com"),
    ],
)
def test_domain_drops_the_port_except_for_localhost_and_ip_literals(header: str, authority: str, domain: str) -> None:
    host = parse_host(header)
    assert (host.authority, host.domain) == (authority, domain)


def test_credential_names_try_the_port_as_sent_first() -> None:
    assert parse_host("proxy.example.com:8080").credential_names == ("proxy.example.com:8080", "proxy.example.com")
    assert parse_host("localhost:3000").credential_names == ("localhost:3000",)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "../etc/passwd",
        "..",
        "a..b",
        "example.com/../../x",
        "example.com\\x",
        "exa mple.com",
        "user@example.com",
        "example.com:",
        "example.com:99999",
        "example.com:abc",
        "[::1",
        "[example.com]",
        "[1.2.3.4]",
        "-leading.example.com",
        "a" * 300,
        "%2e%2e",
    ],
)
def test_malformed_hosts_are_refused(header: str | None) -> None:
    with pytest.raises(InvalidRequest):
        parse_host(header)


@pytest.mark.parametrize("header", ["[::%0]", "[fe80::1%eth0]:3000", "[fe80::1%..\\..\\x]", "[::1%a b]", "[::1%25x]"])
def test_an_ipv6_zone_id_is_refused(header: str) -> None:
    # ipaddress accepts any text after the %, so a zone id let spaces, backslashes and
    # control characters into the domain, its credential file names and the logs (fuzzing).
    with pytest.raises(InvalidRequest):
        parse_host(header)
