"""Properties of Host parsing: any string gives a plain name or ``InvalidRequest``, nothing else."""

from __future__ import annotations

import re
import string

from hypothesis import given
from hypothesis import strategies as st

from nexus.domain.errors import InvalidRequest
from nexus.domain.host import RequestHost, parse_host
from tests.support.fuzzing import fuzz_settings

# What an accepted authority may contain: a host name, an IPv4 address or a bracketed IPv6
# one, and a port. Anything else (a slash, a backslash, a space, a control character) would
# reach the credential file names, the logs and the database.
PLAIN_AUTHORITY = re.compile(r"[a-z0-9._\-]+(?::[0-9]{1,5})?|\[[0-9a-f:.]+\](?::[0-9]{1,5})?")

LABEL = st.text(string.ascii_letters + string.digits, min_size=1, max_size=20)
PORT = st.integers(min_value=1, max_value=65535)
# Fragments that sit on the edges of the grammar, so random strings get near the accepted ones.
EDGY = st.sampled_from(
    ["[", "]", ":", "%", "%25", ".", "..", "/", "\\", " ", "\t", "\x00", "::1", "fe80::1", "127.0.0.1",
     "localhost", "example.com", ":3000", ":0", ":65536", "_", "-", "\u212a", "\u0130", "\uff11"]
)  # fmt: skip
HOSTISH = st.lists(st.one_of(EDGY, st.text(max_size=6), LABEL), max_size=8).map("".join)
# A bracketed IP literal with anything inside the brackets after the address: the shape of an
# IPv6 host, where ``ipaddress`` itself accepts more than an address (a zone id after ``%``).
BRACKETED = st.builds(
    lambda address, separator, inside, port: f"[{address}{separator}{inside}]{port}",
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["", "%", "%25", "/"]),
    st.one_of(HOSTISH, st.text(max_size=8)),
    st.sampled_from(["", ":443", ":x", "x"]),
)


@fuzz_settings(400)
@given(st.one_of(st.none(), st.text(), HOSTISH, BRACKETED))
def test_any_header_value_parses_to_a_plain_authority_or_is_refused(value: str | None) -> None:
    try:
        host = parse_host(value)
    except InvalidRequest:
        return  # the one refusal it documents: a 400 in Anthropic's words
    assert isinstance(host, RequestHost)
    assert PLAIN_AUTHORITY.fullmatch(host.authority), host
    assert PLAIN_AUTHORITY.fullmatch(host.domain), host
    assert ".." not in host.domain
    assert not host.domain.startswith(".")
    # The domain is the authority, or the authority without its port.
    assert host.authority == host.domain or host.authority.startswith(host.domain + ":")


@fuzz_settings(300)
@given(st.one_of(st.text(), HOSTISH, BRACKETED))
def test_an_accepted_authority_parses_to_itself(value: str) -> None:
    try:
        host = parse_host(value)
    except InvalidRequest:
        return
    assert parse_host(host.authority) == host


@fuzz_settings(200)
@given(
    labels=st.lists(LABEL, min_size=1, max_size=5),
    port=st.none() | PORT,
    trailing_dot=st.booleans(),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_a_host_name_in_any_case_drops_its_port_and_its_trailing_dot(
    labels: list[str], port: int | None, trailing_dot: bool, pad: str
) -> None:
    name = ".".join(labels)
    value = pad + name + ("." if trailing_dot else "") + (f":{port}" if port else "") + pad
    host = parse_host(value)
    lowered = name.lower()
    if lowered == "localhost":
        assert host.domain == host.authority
    else:
        assert host.domain == lowered
    assert host.authority == lowered + (f":{port}" if port else "")


@fuzz_settings(200)
@given(address=st.ip_addresses(), port=st.none() | PORT)
def test_an_ip_literal_keeps_its_port_in_the_domain(address: object, port: int | None) -> None:
    text = str(address)
    literal = f"[{text}]" if ":" in text else text
    value = literal + (f":{port}" if port else "")
    host = parse_host(value.upper())
    assert host.domain == host.authority == value.lower()
