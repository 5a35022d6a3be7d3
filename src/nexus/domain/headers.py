"""Which headers cross the proxy, in both directions.

Headers are kept as the ASGI server hands them over (lowercased names, original order), and
every rule here preserves the order of what it keeps: Anthropic validates ``anthropic-beta``
values and their pairing with body fields, so they travel untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

from nexus.domain.credentials import OAUTH_BETA
from nexus.domain.upstream_auth import UpstreamAuth

RawHeaders = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 connection-specific fields, plus the legacy proxy-* family.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"})
_REQUEST_ONLY_DROPS = frozenset({b"host", b"content-length"})
_CLIENT_AUTH = frozenset({b"authorization", b"x-api-key"})
_OAUTH_BETA = OAUTH_BETA.encode()
REQUEST_ID = b"x-request-id"


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in ``Connection``: hop-by-hop by declaration."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    return frozenset(tokens)


def _is_hop_by_hop(name: bytes, declared: frozenset[bytes]) -> bool:
    return name in HOP_BY_HOP or name.startswith(b"proxy-") or name in declared


def upstream_request_headers(
    client_headers: RawHeaders, auth: UpstreamAuth, *, keep_content_length: bool
) -> RawHeaders:
    """The headers to send upstream: the client's, minus transport ones, with the credential in.

    ``keep_content_length`` is for bodies streamed through unread: their length is the one the
    client declared. Buffered bodies get theirs recomputed by the HTTP client.
    """
    declared = _connection_tokens(client_headers)
    replace_auth = auth.replaces_client_auth
    forwarded: RawHeaders = []
    for name, value in client_headers:
        if _is_hop_by_hop(name, declared) or (replace_auth and name in _CLIENT_AUTH):
            continue
        if name in _REQUEST_ONLY_DROPS and not (keep_content_length and name == b"content-length"):
            continue
        forwarded.append((name, value))
    if replace_auth:
        forwarded.append(auth.header())
    if auth.is_oauth:
        _ensure_oauth_beta(forwarded)
    return forwarded


def _ensure_oauth_beta(headers: RawHeaders) -> None:
    """Append the OAuth beta to the first ``anthropic-beta`` when no value carries it yet."""
    first = None
    for index, (name, value) in enumerate(headers):
        if name == b"anthropic-beta":
            if _OAUTH_BETA in (token.strip() for token in value.split(b",")):
                return
            if first is None:
                first = index
    if first is None:
        headers.append((b"anthropic-beta", _OAUTH_BETA))
    else:
        name, value = headers[first]
        headers[first] = (name, value + b"," + _OAUTH_BETA if value.strip() else _OAUTH_BETA)


def client_response_headers(upstream_headers: RawHeaders, request_id: bytes) -> RawHeaders:
    """Upstream's response headers for the client, with the proxy's ``x-request-id`` added.

    Bodies are relayed as raw bytes (never decoded), so ``content-length`` and
    ``content-encoding`` still describe them and pass through.
    """
    declared = _connection_tokens(upstream_headers)
    relayed = [
        (name, value) for name, value in upstream_headers if not _is_hop_by_hop(name, declared) and name != REQUEST_ID
    ]
    relayed.append((REQUEST_ID, request_id))
    return relayed


def header_value(headers: RawHeaders, name: bytes) -> bytes | None:
    """The first value of a header, by lowercased name."""
    for key, value in headers:
        if key == name:
            return value
    return None


def client_key(headers: RawHeaders) -> str | None:
    """The key the client sent: ``x-api-key``, else an ``Authorization: Bearer`` token."""
    key = header_value(headers, b"x-api-key")
    if key is None:
        bearer = header_value(headers, b"authorization") or b""
        key = bearer[7:] if bearer[:7].lower() == b"bearer " else None
    return key.decode("latin-1") if key else None
