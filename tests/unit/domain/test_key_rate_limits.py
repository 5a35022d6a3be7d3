from datetime import UTC, datetime

from nexus.domain.key_rate_limits import KeyWindow, parse_key_rate_limit, retry_after_s


def headers(**buckets: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    found = []
    for bucket, (limit, remaining) in buckets.items():
        name = bucket.replace("_", "-")
        found += [
            (f"anthropic-ratelimit-{name}-limit".encode(), limit.encode()),
            (f"Anthropic-RateLimit-{name}-Remaining".encode(), remaining.encode()),
            (f"anthropic-ratelimit-{name}-reset".encode(), f"2026-12-07T10:0{len(name) % 10}:00Z".encode()),
        ]
    return found


def test_the_tightest_bucket_is_the_keys_utilization() -> None:
    window = parse_key_rate_limit(headers(requests=("4000", "3000"), input_tokens=("1000", "100")))
    reset = int(datetime(2026, 12, 7, 10, 2, tzinfo=UTC).timestamp())  # input-tokens' own reset
    assert window == KeyWindow(utilization=0.9, reset=reset)


def test_no_whole_bucket_means_nothing_known() -> None:
    assert parse_key_rate_limit([]) is None
    assert parse_key_rate_limit(headers(tokens=("0", "0"))) is None, "a zero limit says nothing"
    assert parse_key_rate_limit(headers(tokens=("lots", "12"))) is None
    assert parse_key_rate_limit([(b"anthropic-ratelimit-tokens-limit", b"100")]) is None


def test_odd_values_are_bounded_or_dropped() -> None:
    over = parse_key_rate_limit(headers(tokens=("100", "250")))
    assert over is not None
    assert over.utilization == 0.0
    broken_reset = [(b"anthropic-ratelimit-tokens-limit", b"10"), (b"anthropic-ratelimit-tokens-remaining", b"5"),
                    (b"anthropic-ratelimit-tokens-reset", b"soon")]  # fmt: skip
    assert parse_key_rate_limit(broken_reset) == KeyWindow(utilization=0.5, reset=None)


def test_retry_after_in_seconds() -> None:
    assert retry_after_s([(b"Retry-After", b"17")]) == 17.0
    assert retry_after_s([(b"retry-after", b"Wed, 21 Oct 2026 07:28:00 GMT")]) is None
    assert retry_after_s([(b"retry-after", b"-3")]) is None
    assert retry_after_s([]) is None
