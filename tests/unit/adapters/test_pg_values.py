"""What text and jsonb columns refuse, made storable in the copies they hold."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from nexus.adapters.persistence.pg_values import pg_json, pg_row, pg_text
from nexus.application.recording.row import ExchangeRow


def test_text_without_nul_or_lone_surrogates_is_the_same_object() -> None:
    for text in ("plain ascii", "déjà vu 😀", ""):
        assert pg_text(text) is text


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    assert pg_text("a\x00b") == "a\ufffdb"
    assert pg_text("émoji cut \ud83d, low \udc00, nul \x00") == "émoji cut \ufffd, low \ufffd, nul \ufffd"


def test_json_is_msgspec_s_encoding_unless_jsonb_would_refuse_it() -> None:
    assert pg_json({"a": [1, "x"]}) == '{"a":[1,"x"]}'
    assert json.loads(pg_json({"k\x00": ["a\x00", "\ud83d"]})) == {"k\ufffd": ["a\ufffd", "\ufffd"]}
    escaped_backslash = {"text": "a literal \\u0000 stays"}
    assert json.loads(pg_json(escaped_backslash)) == escaped_backslash


def test_numbers_past_float_are_written_as_their_digits() -> None:
    assert json.loads(pg_json({"big": Decimal("1e400")})) == {"big": "1E+400"}


def row(**fields: object) -> ExchangeRow:
    defaults: dict[str, object] = {
        "id": uuid.uuid4(),
        "ts": datetime(2026, 12, 1, tzinfo=UTC),
        "upstream_request_id": None,
        "domain": "d",
        "account_id": "d",
        "method": "POST",
        "path": "/v1/messages",
        "query": None,
        "status": 200,
        "state": "complete",
        "error": None,
        "stream": False,
        "request_type": "inference",
        "model_requested": "claude-sonnet-5",
        "model": None,
        "user_agent": None,
        "session_id": None,
        "agent_id": None,
        "first_token_ms": None,
        "duration_ms": 1.0,
        "request_headers": [],
        "response_headers": None,
    }
    return ExchangeRow(**(defaults | fields))  # type: ignore[arg-type]


def test_a_row_is_only_copied_when_a_text_field_must_change() -> None:
    clean = row(title="hello")
    assert pg_row(clean) is clean
    odd = row(title="cut \ud83d", model_requested="m\x00", response_body={"t": "\x00"})
    stored = pg_row(odd)
    assert (stored.title, stored.model_requested) == ("cut \ufffd", "m\ufffd")
    assert stored.response_body == {"t": "\x00"}, "jsonb values are left to the serializer"
    assert odd.title == "cut \ud83d", "the original row is not changed"
