import json

import pytest

from nexus.domain.credentials import (
    AccountLimits,
    CredentialFileInvalid,
    OAuthTokens,
    merge_oauth,
    parse_credential_file,
)

BASE = {"type": "api_key", "api_key": "sk-ant-api03-x", "accountId": "acc_1"}


def parse(**extra: object) -> AccountLimits | None:
    return parse_credential_file(json.dumps({**BASE, **extra}).encode()).limits


def test_a_file_without_limits_has_none() -> None:
    assert parse() is None


def test_limits_are_read_and_listed_by_name() -> None:
    limits = parse(limits={"five_hour_output_tokens": 140_000, "seven_day_cost_usd": 250.5, "future_limit": 3})
    assert limits == AccountLimits(five_hour_output_tokens=140_000, seven_day_cost_usd=250.5)
    assert limits.configured() == {"five_hour_output_tokens": 140_000, "seven_day_cost_usd": 250.5}
    assert AccountLimits().configured() == {}


@pytest.mark.parametrize(
    "limits",
    [{"five_hour_output_tokens": 0}, {"five_hour_cost_usd": -1}, {"seven_day_output_tokens": "lots"}, [1, 2]],
)
def test_unusable_limits_make_the_file_invalid_and_name_the_field(limits: object) -> None:
    with pytest.raises(CredentialFileInvalid, match=r"\$\.limits"):
        parse(limits=limits)


def test_an_oauth_refresh_keeps_the_limits() -> None:
    document = {"type": "oauth", "oauth": {"accessToken": "a"}, "limits": {"five_hour_cost_usd": 10}}
    merged = merge_oauth(document, OAuthTokens(access_token="b"))
    assert merged["limits"] == {"five_hour_cost_usd": 10}
