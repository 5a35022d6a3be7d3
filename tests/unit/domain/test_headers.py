from nexus.domain.headers import client_response_headers, upstream_request_headers
from nexus.domain.upstream_auth import ClientAuth, UpstreamAuth, default_auth, read_client_auth

API_KEY_FILE = UpstreamAuth(kind="api_key", secret="sk-ant-api03-file", source="domain_file", account_id="acc")
OAUTH_FILE = UpstreamAuth(kind="oauth", secret="sk-ant-oat01-file", source="domain_file", account_id="acc")

CLIENT = [
    (b"host", b"proxy.local:3000"),
    (b"content-length", b"123"),
    (b"connection", b"keep-alive, x-trace"),
    (b"keep-alive", b"timeout=5"),
    (b"x-trace", b"declared hop-by-hop"),
    (b"proxy-authorization", b"Basic xyz"),
    (b"te", b"trailers"),
    (b"upgrade", b"h2c"),
    (b"anthropic-version", b"2023-06-01"),
    (b"x-api-key", b"sk-client"),
    (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
    (b"authorization", b"Bearer client-token"),
    (b"x-claude-code-session-id", b"s-1"),
    (b"anthropic-dangerous-direct-browser-access", b"true"),
]


def test_stored_api_key_replaces_client_credentials_and_keeps_everything_else_in_order() -> None:
    forwarded = upstream_request_headers(CLIENT, API_KEY_FILE, keep_content_length=False)
    assert forwarded == [
        (b"anthropic-version", b"2023-06-01"),
        (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
        (b"x-claude-code-session-id", b"s-1"),
        (b"anthropic-dangerous-direct-browser-access", b"true"),
        (b"x-api-key", b"sk-ant-api03-file"),
    ]


def test_oauth_appends_its_beta_to_the_clients_list_once() -> None:
    forwarded = upstream_request_headers(CLIENT, OAUTH_FILE, keep_content_length=False)
    assert (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20") in forwarded
    assert forwarded[-1] == (b"authorization", b"Bearer sk-ant-oat01-file")
    assert not any(name == b"x-api-key" for name, _ in forwarded)


def test_oauth_beta_already_present_is_left_alone() -> None:
    headers = [(b"anthropic-beta", b"oauth-2025-04-20, claude-code-20250219")]
    forwarded = upstream_request_headers(headers, OAUTH_FILE, keep_content_length=False)
    assert forwarded[0] == (b"anthropic-beta", b"oauth-2025-04-20, claude-code-20250219")


def test_oauth_without_any_beta_header_gets_one() -> None:
    forwarded = upstream_request_headers([(b"anthropic-version", b"2023-06-01")], OAUTH_FILE, keep_content_length=False)
    assert (b"anthropic-beta", b"oauth-2025-04-20") in forwarded


def test_client_credentials_pass_through_untouched() -> None:
    auth = read_client_auth(CLIENT).as_upstream(account_id="proxy.local")
    forwarded = upstream_request_headers(CLIENT, auth, keep_content_length=False)
    assert (b"x-api-key", b"sk-client") in forwarded
    assert (b"authorization", b"Bearer client-token") in forwarded


def test_client_oauth_bearer_gets_the_beta_it_needs() -> None:
    headers = [(b"authorization", b"Bearer sk-ant-oat01-abc")]
    auth = read_client_auth(headers).as_upstream(account_id="d")
    assert auth.is_oauth
    forwarded = upstream_request_headers(headers, auth, keep_content_length=False)
    assert forwarded == [(b"authorization", b"Bearer sk-ant-oat01-abc"), (b"anthropic-beta", b"oauth-2025-04-20")]


def test_streamed_bodies_keep_the_declared_length() -> None:
    forwarded = upstream_request_headers(CLIENT, API_KEY_FILE, keep_content_length=True)
    assert (b"content-length", b"123") in forwarded


def test_default_key_that_is_an_oauth_token_is_sent_as_bearer() -> None:
    assert default_auth("sk-ant-oat01-x", "d").header() == (b"authorization", b"Bearer sk-ant-oat01-x")
    assert default_auth("sk-ant-api03-x", "d").header() == (b"x-api-key", b"sk-ant-api03-x")


def test_read_client_auth_understands_both_headers() -> None:
    assert read_client_auth([(b"authorization", b"bearer  tok ")]) == ClientAuth(bearer="tok")
    assert read_client_auth([(b"authorization", b"Basic abc")]) == ClientAuth()
    assert read_client_auth([(b"x-api-key", b"k")]) == ClientAuth(api_key="k")
    assert not read_client_auth([(b"x-api-key", b"  ")]).present


def test_response_headers_drop_hop_by_hop_and_carry_the_proxy_request_id() -> None:
    upstream = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"transfer-encoding", b"chunked"),
        (b"connection", b"keep-alive"),
        (b"request-id", b"req_011"),
        (b"x-request-id", b"upstream-id"),
        (b"content-encoding", b"gzip"),
        (b"anthropic-ratelimit-unified-status", b"allowed"),
        (b"retry-after", b"17"),
    ]
    assert client_response_headers(upstream, b"ours") == [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"request-id", b"req_011"),
        (b"content-encoding", b"gzip"),
        (b"anthropic-ratelimit-unified-status", b"allowed"),
        (b"retry-after", b"17"),
        (b"x-request-id", b"ours"),
    ]
