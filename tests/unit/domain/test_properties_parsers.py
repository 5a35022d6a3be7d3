"""Properties of the domain's other readers of outside input: headers, encodings, JSON, request
kinds, rate-limit headers, credential files, analyses and prompts. Each takes anything and
answers, or raises the one error it documents."""

from __future__ import annotations

import gzip
import json
import math
import zlib
from datetime import UTC
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from nexus.domain import json_text
from nexus.domain.analysis.result import ConversationAnalysis, InvalidAnalysis, parse_analysis
from nexus.domain.analysis.transcript import Turn, exchange_turns, fit
from nexus.domain.content_encoding import decoded_body
from nexus.domain.credentials import CredentialFile, CredentialFileInvalid, parse_credential_file
from nexus.domain.errors import InvalidRequest
from nexus.domain.headers import (
    HOP_BY_HOP,
    REQUEST_ID,
    client_key,
    client_response_headers,
    header_value,
    upstream_request_headers,
)
from nexus.domain.masking import MASK, masked_headers, without_secrets
from nexus.domain.prompts import InvalidPrompt, Prompt, first_user_text_hashes, prompt_from
from nexus.domain.proxy_request import MessagesSummary, inspect_json_body
from nexus.domain.rate_limits import UNIFIED_PREFIX, UnifiedRateLimit, parse_unified_rate_limit
from nexus.domain.request_type import classify_decoded, classify_request
from nexus.domain.upstream_auth import UpstreamAuth, read_client_auth
from tests.support.fuzzing import fuzz_settings
from tests.support.json_strategies import JSON, MESSAGES, json_spellings, messages_bodies, spelled_bodies

# --- headers -------------------------------------------------------------------------------------

HEADER_NAMES = st.one_of(
    st.sampled_from(
        [b"host", b"content-length", b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding",
         b"upgrade", b"proxy-authorization", b"proxy-connection", b"authorization", b"x-api-key",
         b"anthropic-beta", b"anthropic-version", b"x-request-id", b"x-custom", b"content-type"]
    ),
    st.binary(min_size=1, max_size=12).map(bytes.lower),
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.sampled_from([b"", b" ", b"x-custom, keep-alive", b"Bearer sk-ant-oat01-x", b"bearer  k ", b"oauth-2025-04-20",
                     b"a, oauth-2025-04-20", b"close", b"Basic dXNlcjpwdw==", b"Bearer"]),
    st.binary(max_size=24),
)  # fmt: skip
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=10)
AUTH = st.builds(
    UpstreamAuth,
    kind=st.sampled_from(["api_key", "oauth"]),
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
    source=st.sampled_from(["domain_file", "client", "default"]),
    account_id=st.just("acc"),
)


def declared(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {token.strip().lower() for name, value in headers if name == b"connection" for token in value.split(b",")}


def is_subsequence(part: list[Any], whole: list[Any]) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


@fuzz_settings(300)
@given(HEADERS, AUTH, st.booleans())
def test_upstream_headers_drop_transport_ones_keep_order_and_carry_the_credential(
    headers: list[tuple[bytes, bytes]], auth: UpstreamAuth, keep_length: bool
) -> None:
    sent = upstream_request_headers(headers, auth, keep_content_length=keep_length)
    hop_by_hop = HOP_BY_HOP | declared(headers)
    assert not any(name in hop_by_hop or name.startswith(b"proxy-") for name, _ in sent)
    assert b"host" not in [name for name, _ in sent]
    passed = [item for item in sent if item[0] != b"anthropic-beta" and item != auth.header()]
    assert is_subsequence(passed, headers), "the client's headers keep their order"
    if auth.replaces_client_auth:
        credentials = [item for item in sent if item[0] in (b"authorization", b"x-api-key")]
        assert credentials == [auth.header()]
    if auth.is_oauth:
        betas = [value for name, value in sent if name == b"anthropic-beta"]
        assert any(b"oauth-2025-04-20" in (token.strip() for token in value.split(b",")) for value in betas)


@fuzz_settings(300)
@given(HEADERS, st.binary(min_size=1, max_size=40))
def test_response_headers_carry_one_request_id_the_proxys(
    headers: list[tuple[bytes, bytes]], request_id: bytes
) -> None:
    relayed = client_response_headers(headers, request_id)
    assert [value for name, value in relayed if name == REQUEST_ID] == [request_id]
    assert not any(name in HOP_BY_HOP | declared(headers) or name.startswith(b"proxy-") for name, _ in relayed)
    assert is_subsequence(relayed[:-1], headers)


@fuzz_settings(300)
@given(HEADERS)
def test_client_credentials_are_read_from_any_headers(headers: list[tuple[bytes, bytes]]) -> None:
    key = client_key(headers)
    assert key is None or (key and isinstance(key, str))
    auth = read_client_auth(headers)
    for secret in (auth.bearer, auth.api_key):
        assert secret is None or (secret and secret == secret.strip())
    if header_value(headers, b"x-api-key") is None:
        authorization = header_value(headers, b"authorization")
        if authorization is None:
            assert key is None
            assert not auth.present
        elif not authorization.lower().startswith(b"bearer "):
            assert key is None  # another scheme (Basic, say) is no key of the client's


SECRET_HEADERS = st.sampled_from([b"authorization", b"proxy-authorization", b"x-api-key", b"cookie", b"set-cookie",
                                  b"x-dashboard-key"])  # fmt: skip


@fuzz_settings(300)
@given(st.lists(st.tuples(st.one_of(SECRET_HEADERS, HEADER_NAMES), HEADER_VALUES), max_size=8))
def test_masking_hides_every_secret_and_reads_its_own_output_alike(headers: list[tuple[bytes, bytes]]) -> None:
    shown = masked_headers(headers)
    assert masked_headers(without_secrets(headers)) == shown
    for (name, value), (_, text) in zip(headers, shown, strict=True):
        if name in {
            b"authorization",
            b"proxy-authorization",
            b"x-api-key",
            b"cookie",
            b"set-cookie",
            b"x-dashboard-key",
        }:
            scheme = value.decode("latin-1").partition(" ")[0]
            assert text in (MASK, f"{scheme} {MASK}")
        else:
            assert text == value.decode("latin-1")


# --- content encoding ----------------------------------------------------------------------------


@fuzz_settings(200)
@given(st.binary(max_size=2000), st.sampled_from([b"gzip", b"GZIP", b" gzip ", b"x-gzip", b"deflate", b"Deflate"]))
def test_a_compressed_body_decodes_to_itself(body: bytes, encoding: bytes) -> None:
    packed = gzip.compress(body) if b"gzip" in encoding.lower() else zlib.compress(body)
    assert decoded_body(packed, encoding) == body
    assert decoded_body(body, None) == body
    assert decoded_body(body, b" Identity ") == body


@fuzz_settings(300)
@given(
    st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=12), st.sampled_from([b"gzip", b"deflate", b"br"]))
)
def test_any_body_in_any_encoding_decodes_or_says_it_cannot(body: bytes, encoding: bytes | None) -> None:
    decoded = decoded_body(body, encoding)
    assert decoded is None or isinstance(decoded, bytes)


# --- JSON ----------------------------------------------------------------------------------------


@fuzz_settings(150)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=100), spelled_bodies()))
def test_any_text_is_json_or_a_decode_error(data: bytes | str) -> None:
    try:
        value = json_text.loads(data)
    except msgspec.DecodeError:
        return
    # What was read, made encodable, any encoder can write.
    msgspec.json.encode(json_text.encodable(value))


@fuzz_settings(200)
@given(JSON)
def test_json_reads_every_document_as_the_standard_library_does(value: Any) -> None:
    # The standard library is the reference reading (a surrogate pair written as two escapes
    # is one character again, as JSON says); msgspec's speed must not change the answer.
    for ascii_only in (True, False):
        text = json.dumps(value, ensure_ascii=ascii_only)
        assert json_text.loads(text) == json.loads(text)
        if ascii_only:
            assert json_text.loads(text.encode()) == json.loads(text)


# --- request kinds -------------------------------------------------------------------------------


@fuzz_settings(150)
@given(st.one_of(st.binary(max_size=200), spelled_bodies()))
def test_any_body_has_a_kind(body: bytes) -> None:
    assert classify_request(body) in ("quota", "query_evaluation", "inference")


@fuzz_settings(120)
@given(messages_bodies(MESSAGES))
def test_a_body_has_the_same_kind_as_bytes_and_decoded(body: dict[str, Any]) -> None:
    assert classify_request(json.dumps(body).encode()) == classify_decoded(body)


def summarised(path: str, body: bytes) -> MessagesSummary | InvalidRequest:
    try:
        return inspect_json_body(path, body)
    except InvalidRequest as refused:
        return refused


@fuzz_settings(150)
@given(
    st.one_of(st.binary(max_size=200), spelled_bodies()), st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"])
)
def test_any_messages_body_is_summarised_or_refused_as_invalid(body: bytes, path: str) -> None:
    summary = summarised(path, body)
    if isinstance(summary, InvalidRequest):
        assert summary.status == 400
        assert summary.message
        return
    assert isinstance(summary, MessagesSummary)
    summary.model.encode()  # it goes to logs, spans and a text column: no lone surrogate
    assert not (summary.stream and path != "/v1/messages")


# --- rate-limit headers --------------------------------------------------------------------------

UNIFIED_SUFFIXES = st.sampled_from(
    [b"status", b"reset", b"representative-claim", b"5h-status", b"5h-utilization", b"5h-reset", b"7d-status",
     b"7d-utilization", b"7d-reset", b"overage-status", b"overage-disabled-reason", b"7d_opus-utilization"]
)  # fmt: skip
NUMBERISH = st.one_of(
    st.integers().map(lambda n: str(n).encode()),
    st.floats().map(lambda f: repr(f).encode()),
    st.sampled_from([b"nan", b"inf", b"-inf", b"1e999", b"1_000", b" 0.5 ", b"\xa00.5", b"0x10", b""]),
    st.binary(max_size=10),
)
UNIFIED = st.lists(
    st.tuples(
        st.one_of(UNIFIED_SUFFIXES.map(lambda suffix: UNIFIED_PREFIX + suffix), HEADER_NAMES).map(
            lambda name: name.upper() if name[:1] == b"A" else name
        ),
        st.one_of(NUMBERISH, HEADER_VALUES),
    ),
    max_size=12,
)


@fuzz_settings(300)
@given(UNIFIED)
def test_any_rate_limit_headers_parse_to_plausible_values(headers: list[tuple[bytes, bytes]]) -> None:
    parsed = parse_unified_rate_limit(headers)
    if not any(name.lower().startswith(UNIFIED_PREFIX) for name, _ in headers):
        assert parsed is None
        return
    assert isinstance(parsed, UnifiedRateLimit)
    for epoch in (parsed.reset, parsed.five_hour_reset, parsed.seven_day_reset):
        assert epoch is None or 1_000_000_000 <= epoch < 10_000_000_000
    for fraction in (parsed.five_hour_utilization, parsed.seven_day_utilization):
        assert fraction is None or (fraction >= 0 and math.isfinite(fraction))
    assert all(len(value) <= 200 for value in parsed.headers.values())
    msgspec.json.encode(parsed)  # it is stored and served as JSON


@fuzz_settings(200)
@given(
    st.integers(1_000_000_000, 9_999_999_999),
    st.floats(0, 10, allow_nan=False),
    st.sampled_from(["allowed", "rejected"]),
)
def test_rate_limit_headers_as_anthropic_sends_them_are_read(reset: int, utilization: float, status: str) -> None:
    headers = [
        (b"anthropic-ratelimit-unified-status", status.upper().encode()),
        (b"anthropic-ratelimit-unified-5h-utilization", repr(utilization).encode()),
        (b"Anthropic-Ratelimit-Unified-5h-Reset", str(reset).encode()),
    ]
    parsed = parse_unified_rate_limit(headers)
    assert parsed is not None
    assert (parsed.status, parsed.five_hour_utilization, parsed.five_hour_reset) == (status, utilization, reset)


# --- credential files, analyses, prompts ---------------------------------------------------------

CREDENTIAL_LIKE = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["api_key", "oauth", "pool"]), JSON)},
    optional={
        "api_key": JSON, "accountId": JSON, "client_api_key": JSON, "accounts": st.one_of(st.lists(JSON), JSON),
        "oauth": st.one_of(JSON, st.fixed_dictionaries({"accessToken": JSON}, optional={"expiresAt": JSON})),
        "limits": st.one_of(JSON, st.dictionaries(st.sampled_from(["five_hour_output_tokens", "daily_usd"]), JSON)),
        "slack": JSON,
    },
)  # fmt: skip


@fuzz_settings(150)
@given(
    st.one_of(
        st.binary(max_size=200),
        CREDENTIAL_LIKE.flatmap(json_spellings),
        # Deep where the file takes any JSON (the Slack settings), so the decoder goes down.
        st.integers(1, 50_000).map(
            lambda depth: b'{"type":"api_key","api_key":"k","slack":{"a":' + b"[" * depth + b"]" * depth + b"}}"
        ),
    )
)
def test_any_credential_file_is_read_or_refused_as_invalid(data: bytes) -> None:
    try:
        credential = parse_credential_file(data)
    except CredentialFileInvalid:
        return
    assert isinstance(credential, CredentialFile)


ANALYSIS_LIKE = st.one_of(
    JSON,
    st.fixed_dictionaries({"analysis": JSON}),
    st.fixed_dictionaries(
        {}, optional={name: JSON for name in ("summary", "keyTopics", "sentiment", "userIntent", "outcomes",
                                              "actionItems", "promptingTips", "interactionPatterns")},
    ),
)  # fmt: skip


@fuzz_settings(150)
@given(
    st.one_of(
        ANALYSIS_LIKE.flatmap(json_spellings),
        ANALYSIS_LIKE.flatmap(json_spellings).map(bytes.decode),  # the model's answer as text
        st.binary(max_size=100),
        st.text(st.characters(codec=None), max_size=100),
        ANALYSIS_LIKE,  # already decoded
    )
)
def test_any_model_answer_is_an_analysis_or_invalid(data: Any) -> None:
    try:
        analysis = parse_analysis(data)
    except InvalidAnalysis:
        return
    assert isinstance(analysis, ConversationAnalysis)


YAML_LIKE = st.recursive(
    st.one_of(JSON, st.dates(), st.datetimes(timezones=st.just(UTC)), st.binary(max_size=4), st.floats()),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()), children, max_size=4),
    ),
    max_leaves=10,
)
PROMPT_LIKE = st.fixed_dictionaries(
    {"template": YAML_LIKE}, optional={"name": YAML_LIKE, "description": YAML_LIKE, "arguments": YAML_LIKE}
)


@fuzz_settings(200)
@given(st.one_of(YAML_LIKE, PROMPT_LIKE))
def test_any_prompt_file_is_a_prompt_or_invalid(document: Any) -> None:
    try:
        prompt = prompt_from(document, default_name="file")
    except InvalidPrompt:
        return
    assert isinstance(prompt, Prompt)


@fuzz_settings(100)
@given(st.one_of(JSON, messages_bodies(MESSAGES)), JSON, st.integers(0, 10_000))
def test_any_exchange_gives_turns_that_fit(request: Any, response: Any, budget: int) -> None:
    turns = exchange_turns(request, response)
    assert all(isinstance(turn, Turn) for turn in turns)
    fit(turns * 30, max_tokens=budget)
    first_user_text_hashes(request)
