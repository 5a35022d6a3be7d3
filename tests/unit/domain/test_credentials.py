import pytest

from nexus.domain.credentials import (
    CredentialFileInvalid,
    OAuthTokens,
    RefreshedTokens,
    apply_refresh,
    merge_oauth,
    parse_credential_file,
    secrets_match,
)
from nexus.domain.errors import error_body


def test_parses_the_original_oauth_format() -> None:
    credential = parse_credential_file(
        b'{"type":"oauth","accountId":"acc_1","client_api_key":"cnp_live_x","slack":{"channel":"#a"},'
        b'"oauth":{"accessToken":"sk-ant-oat01-a","refreshToken":"sk-ant-ort01-r","expiresAt":1700000000000,'
        b'"scopes":["user:inference"],"isMax":true}}'
    )
    assert credential.account_id == "acc_1"
    assert credential.client_api_key == "cnp_live_x"
    assert credential.oauth == OAuthTokens(
        access_token="sk-ant-oat01-a",
        refresh_token="sk-ant-ort01-r",
        expires_at=1700000000000,
        scopes=["user:inference"],
        is_max=True,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"type":"api_key"}',
        b'{"type":"api_key","api_key":""}',
        b'{"type":"oauth"}',
        b'{"type":"oauth","oauth":{"refreshToken":"r"}}',
        b'{"type":"bearer","api_key":"k"}',
        b'{"type":"api_key","api_key":42}',
    ],
)
def test_unusable_files_are_refused_without_quoting_secrets(data: bytes) -> None:
    with pytest.raises(CredentialFileInvalid) as caught:
        parse_credential_file(data)
    assert "42" not in str(caught.value)


def test_refresh_is_due_a_minute_before_expiry() -> None:
    tokens = OAuthTokens(access_token="a", expires_at=1_000_000)
    assert not tokens.needs_refresh(939_999)
    assert tokens.needs_refresh(940_000)
    assert not tokens.is_expired(999_999)
    assert tokens.is_expired(1_000_000)
    assert not OAuthTokens(access_token="a").needs_refresh(10**15)


def test_refresh_keeps_the_old_refresh_token_when_none_comes_back() -> None:
    before = OAuthTokens(access_token="a", refresh_token="r1", expires_at=1, scopes=["x"], is_max=True)
    after = apply_refresh(before, RefreshedTokens(access_token="b", expires_in=3600), now_ms=5_000)
    assert after == OAuthTokens(access_token="b", refresh_token="r1", expires_at=3_605_000, scopes=["x"], is_max=True)
    rotated = apply_refresh(before, RefreshedTokens(access_token="c", expires_in=1, refresh_token="r2", scope="a b"), 0)
    assert (rotated.refresh_token, rotated.scopes) == ("r2", ["a", "b"])


def test_merge_keeps_every_other_field() -> None:
    document = {
        "type": "oauth",
        "accountId": "acc",
        "client_api_key": "k",
        "slack": {"webhook_url": "https://hooks"},
        "custom": [1],
        "oauth": {"accessToken": "old", "isMax": True, "extra": "kept"},
    }
    merged = merge_oauth(document, OAuthTokens(access_token="new", refresh_token="r", expires_at=9))
    assert merged["oauth"] == {
        "accessToken": "new",
        "refreshToken": "r",
        "expiresAt": 9,
        "isMax": True,
        "extra": "kept",
    }
    assert {key: merged[key] for key in ("type", "accountId", "client_api_key", "slack", "custom")} == {
        key: document[key] for key in ("type", "accountId", "client_api_key", "slack", "custom")
    }


def test_secret_comparison() -> None:
    assert secrets_match("cnp_live_abc", "cnp_live_abc")
    assert not secrets_match("cnp_live_abd", "cnp_live_abc")
    assert not secrets_match("", "cnp_live_abc")
    assert not secrets_match(None, "cnp_live_abc")


def test_error_body_is_anthropics_shape() -> None:
    assert error_body("invalid_request_error", "bad", "r1") == (
        b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"},"request_id":"r1"}'
    )


def test_a_credential_file_nested_past_the_decoder_is_invalid() -> None:
    # It raised RecursionError, which the file store does not catch: every request of the
    # domain failed with a 500 instead of naming the bad file (fuzzing).
    data = b'{"type":"api_key","api_key":"k","slack":{"a":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    with pytest.raises(CredentialFileInvalid, match="nested too deeply"):
        parse_credential_file(data)
