import pytest

from nexus.domain.rate_limits import UnifiedRateLimit, is_transition_to_alert, parse_unified_rate_limit

# A subscription-limit 429 as observed on the wire (anthropic-wire.md §2.3).
REJECTED = [
    (b"content-type", b"application/json"),
    (b"anthropic-ratelimit-unified-status", b"rejected"),
    (b"anthropic-ratelimit-unified-representative-claim", b"five_hour"),
    (b"anthropic-ratelimit-unified-reset", b"1785518400"),
    (b"anthropic-ratelimit-unified-5h-status", b"rejected"),
    (b"anthropic-ratelimit-unified-5h-utilization", b"1.01"),
    (b"anthropic-ratelimit-unified-5h-surpassed-threshold", b"1.0"),
    (b"anthropic-ratelimit-unified-5h-reset", b"1785518400"),
    (b"anthropic-ratelimit-unified-7d-status", b"allowed"),
    (b"anthropic-ratelimit-unified-7d-utilization", b"0.69"),
    (b"anthropic-ratelimit-unified-7d-reset", b"1786006800"),
    (b"anthropic-ratelimit-unified-overage-status", b"rejected"),
    (b"anthropic-ratelimit-unified-overage-disabled-reason", b"org_level_disabled"),
    (b"anthropic-ratelimit-unified-fallback-percentage", b"0.5"),
    (b"retry-after", b"7835"),
]


def test_every_modelled_header_is_parsed() -> None:
    parsed = parse_unified_rate_limit(REJECTED)
    assert parsed is not None
    assert (parsed.status, parsed.reset, parsed.representative_claim) == ("rejected", 1785518400, "five_hour")
    assert (parsed.five_hour_status, parsed.five_hour_utilization, parsed.five_hour_reset) == (
        "rejected", 1.01, 1785518400,
    )  # fmt: skip
    assert (parsed.seven_day_status, parsed.seven_day_utilization, parsed.seven_day_reset) == (
        "allowed", 0.69, 1786006800,
    )  # fmt: skip
    assert (parsed.overage_status, parsed.overage_disabled_reason) == ("rejected", "org_level_disabled")
    assert parsed.alarming


def test_every_unified_header_is_kept_as_received_and_nothing_else() -> None:
    parsed = parse_unified_rate_limit(REJECTED)
    assert parsed is not None
    assert parsed.headers["fallback-percentage"] == "0.5"
    assert parsed.headers["5h-surpassed-threshold"] == "1.0"
    assert len(parsed.headers) == 13
    assert "retry-after" not in parsed.headers


def test_api_key_traffic_has_no_unified_view() -> None:
    headers = [(b"anthropic-ratelimit-requests-limit", b"4000"), (b"request-id", b"req_1")]
    assert parse_unified_rate_limit(headers) is None
    assert parse_unified_rate_limit([]) is None


def test_names_are_matched_in_any_case_and_values_trimmed() -> None:
    parsed = parse_unified_rate_limit(
        [
            (b"Anthropic-RateLimit-Unified-Status", b" Allowed_Warning "),
            (b"ANTHROPIC-RATELIMIT-UNIFIED-5H-UTILIZATION", b"0.8"),
        ]
    )
    assert parsed == UnifiedRateLimit(
        status="allowed_warning",
        five_hour_utilization=0.8,
        headers={"status": "Allowed_Warning", "5h-utilization": "0.8"},
    )
    assert parsed.alarming


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"anthropic-ratelimit-unified-reset", b"soon"),
        (b"anthropic-ratelimit-unified-reset", b"1785518400000"),  # milliseconds: not an epoch in seconds
        (b"anthropic-ratelimit-unified-5h-reset", b"-1"),
        (b"anthropic-ratelimit-unified-5h-utilization", b"nan"),
        (b"anthropic-ratelimit-unified-5h-utilization", b"-0.5"),
        (b"anthropic-ratelimit-unified-7d-utilization", b"inf"),
        (b"anthropic-ratelimit-unified-7d-utilization", b""),
    ],
)
def test_values_that_do_not_parse_are_left_out_not_guessed(name: bytes, value: bytes) -> None:
    parsed = parse_unified_rate_limit([(name, value)])
    assert parsed is not None
    assert (parsed.reset, parsed.five_hour_reset, parsed.five_hour_utilization, parsed.seven_day_utilization) == (
        None, None, None, None,
    )  # fmt: skip


def test_a_fractional_reset_is_truncated_to_seconds() -> None:
    parsed = parse_unified_rate_limit([(b"anthropic-ratelimit-unified-reset", b"1785518400.75")])
    assert parsed is not None
    assert parsed.reset == 1785518400


def test_the_first_of_repeated_headers_wins() -> None:
    parsed = parse_unified_rate_limit(
        [(b"anthropic-ratelimit-unified-status", b"allowed"), (b"anthropic-ratelimit-unified-status", b"rejected")]
    )
    assert parsed is not None
    assert parsed.status == "allowed"
    assert not parsed.alarming


@pytest.mark.parametrize(
    ("previous", "current", "alert"),
    [
        (None, "allowed", False),
        (None, "allowed_warning", True),
        (None, "rejected", True),
        ("allowed", "allowed_warning", True),
        ("allowed_warning", "allowed_warning", False),
        ("allowed_warning", "rejected", True),
        ("rejected", "rejected", False),
        ("rejected", "allowed", False),
        ("allowed", None, False),
    ],
)
def test_a_warning_is_due_only_on_a_change_into_an_alert_status(
    previous: str | None, current: str | None, alert: bool
) -> None:
    assert is_transition_to_alert(previous, current) is alert
