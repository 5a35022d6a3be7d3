from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nexus.domain.limit_alerts import (
    Culprit,
    InvalidThresholds,
    LimitAlert,
    anthropic_status_key,
    anthropic_window_key,
    crossed,
    parse_thresholds,
)
from nexus.domain.slack_message import SlackTarget, limit_alert_payload


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80,90,100", (80, 90, 100)), (" 95 , 50,50 ", (50, 95)), ("100", (100,)), ("80,,90", (80, 90))],
)
def test_thresholds_are_whole_percentages_sorted_once(text: str, expected: tuple[int, ...]) -> None:
    assert parse_thresholds(text) == expected


@pytest.mark.parametrize("text", ["", ",", "0", "80.5", "-10", "1001", "²", "ninety"])
def test_other_thresholds_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(InvalidThresholds, match=r"threshold|percentage"):
        parse_thresholds(text)


def test_crossed_thresholds_include_the_one_reached_exactly() -> None:
    assert crossed(79.99, (80, 90, 100)) == []
    assert crossed(80.0, (80, 90, 100)) == [80]
    assert crossed(130.0, (80, 90, 100)) == [80, 90, 100]


def test_window_keys_name_the_window_so_a_new_window_alerts_again() -> None:
    assert anthropic_window_key("acc", 1790814600, 80) != anthropic_window_key("acc", 1790832600, 80)
    assert anthropic_status_key("acc", "rejected", None).endswith("|unknown")


def alert(**changes: object) -> LimitAlert:
    values: dict[str, object] = {
        "measure": "limit",
        "account_id": "acc_team",
        "domain": "team.example",
        "name": "5 h output tokens",
        "threshold": 90,
        "percent": 93.4,
        "used": "93,400",
        "limit": "100,000",
        "resets_at": None,
    }
    values.update(changes)
    return LimitAlert(**values)  # type: ignore[arg-type]


def test_the_headline_says_who_what_how_much_and_when_it_resets() -> None:
    assert alert().headline == (
        "account acc_team (team.example) reached 90 % of its 5 h output tokens: 93 % used (93,400 of 100,000)"
    )
    resetting = alert(
        measure="anthropic_status", status="rejected", resets_at=datetime(2026, 12, 6, 17, 30, tzinfo=UTC)
    )
    assert (
        resetting.headline == "Anthropic reports account acc_team (team.example) as rejected, resets 2026-12-06T17:30Z"
    )


def test_a_conversation_title_in_slack_is_text_never_a_mention() -> None:
    culprit = Culprit(kind="conversation", id="c-1", title="<!channel> look & see", requests=4, tokens=12_345)
    payload = limit_alert_payload(SlackTarget(webhook_url="https://hooks.slack.test/x"), alert(culprits=[culprit]))
    text = payload["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; look &amp; see" in text
    assert "<!channel>" not in str(payload)
    assert "12,345 tokens, 4 requests" in text
    assert payload["text"].startswith("account acc_team")
