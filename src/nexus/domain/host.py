"""The domain a request belongs to, read from its Host header.

The domain keys credentials and accounting, so it must be exact and safe: a Host header that
is not a plain host name (optionally with a port) is refused, which makes every derived file
name a plain name inside the credentials directory.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import msgspec

from nexus.domain.errors import InvalidRequest

# RFC 1123 labels; underscores are tolerated because container hostnames use them.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")
_MAX_HOST_LENGTH = 253


class RequestHost(msgspec.Struct, frozen=True):
    """A validated Host: ``authority`` as sent (lowercased) and ``domain`` for accounting."""

    authority: str
    domain: str

    @property
    def credential_names(self) -> tuple[str, ...]:
        """Names to look a credential file up by: first with the port as sent, then the domain."""
        if self.authority == self.domain:
            return (self.domain,)
        return (self.authority, self.domain)


@lru_cache(maxsize=4096)  # a pure function of a value that repeats on every request
def parse_host(value: str | None) -> RequestHost:
    """Validate a Host header value and derive its domain.

    The port is dropped, except for ``localhost`` and IP literals, where it is what tells
    several local set-ups apart (as the original claude-nexus did).
    """
    if not value:
        raise InvalidRequest("Missing Host header")
    authority = value.strip().lower()
    name, port = _split_port(authority, original=value)
    if port is not None and not (_PORT.fullmatch(port) and 0 < int(port) <= 65535):
        raise InvalidRequest(f"Malformed Host header: {value!r}")
    is_ip = _is_ip_literal(name)
    if not is_ip and not (len(name) <= _MAX_HOST_LENGTH and _HOST_NAME.fullmatch(name)):
        raise InvalidRequest(f"Malformed Host header: {value!r}")
    name = name.rstrip(".")
    authority = name if port is None else f"{name}:{port}"
    keeps_port = is_ip or name == "localhost"
    return RequestHost(authority=authority, domain=authority if keeps_port else name)


def _split_port(authority: str, *, original: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidRequest(f"Malformed Host header: {original!r}")
        rest = authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidRequest(f"Malformed Host header: {original!r}")
        return authority[: end + 1], (rest[1:] if rest else None)
    name, sep, port = authority.partition(":")
    return name, (port if sep else None)


def _is_ip_literal(name: str) -> bool:
    """IPv4 as is, IPv6 only in brackets (an unbracketed colon was taken as the port).

    An IPv6 zone id (``[fe80::1%eth0]``) is refused: it names an interface of the client's
    machine, means nothing to this server, and ``ipaddress`` takes any text after the ``%``
    (spaces, backslashes, control characters), which would reach file names and logs.
    """
    bracketed = name.startswith("[") and name.endswith("]")
    try:
        address = ipaddress.ip_address(name[1:-1] if bracketed else name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return False
    return bracketed == (address.version == 6)
