"""A client's request as the proxy sees it, and the little it must read of the body."""

from __future__ import annotations

from typing import Any

import msgspec

from nexus.domain import json_text
from nexus.domain.errors import InvalidRequest
from nexus.domain.host import RequestHost

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# Bodies the proxy reads (and so buffers and limits); every other /v1 body streams through.
JSON_BODY_PATHS = frozenset({MESSAGES_PATH, COUNT_TOKENS_PATH})


class _MessagesFields(msgspec.Struct):
    """Only what routing needs; every other field stays in the raw bytes we forward."""

    model: str
    messages: msgspec.Raw
    stream: object = False


class _CountTokensFields(msgspec.Struct):
    model: str
    messages: msgspec.Raw


class _ReadFields(msgspec.Struct):
    """The same fields from an already decoded body (the rare one msgspec cannot read)."""

    model: str
    messages: Any
    stream: object = False


class MessagesSummary(msgspec.Struct, frozen=True):
    model: str
    stream: bool


def inspect_json_body(path: str, body: bytes) -> MessagesSummary:
    """Validate a Messages (or count_tokens) body without re-serialising it.

    Raises InvalidRequest with Anthropic-style wording for bad JSON or missing fields.
    """
    fields_type: type[_MessagesFields | _CountTokensFields] = (
        _MessagesFields if path == MESSAGES_PATH else _CountTokensFields
    )
    try:
        fields = msgspec.json.decode(body, type=fields_type)
        model = fields.model
        messages_listed = bytes(fields.messages).startswith(b"[")
        stream = isinstance(fields, _MessagesFields) and fields.stream is True
    except msgspec.ValidationError as exc:
        raise InvalidRequest(_validation_message(exc)) from None
    except RecursionError:
        # Valid JSON, but nested past what any decoder here can read (about a thousand levels):
        # the proxy cannot tell the model or the stream, so it refuses rather than fail.
        raise InvalidRequest("Request body is nested too deeply to read") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # Valid JSON msgspec will not read (a lone surrogate escape, a huge number): upstream
        # decides what to make of it, as it would without the proxy. (Bytes that are no UTF-8
        # raise the second; the fallback refuses them as invalid JSON.)
        read = _read_fields(body)
        messages_listed = isinstance(read.messages, list)
        stream = path == MESSAGES_PATH and read.stream is True
        # The model name travels on into the journal, logs and spans, which take no lone
        # surrogate; the body itself is forwarded as it came.
        model = json_text.without_lone_surrogates(read.model)
    if not messages_listed:
        raise InvalidRequest("messages: Input should be a valid list")
    return MessagesSummary(model=model, stream=stream)


def _read_fields(body: bytes) -> _ReadFields:
    try:
        return json_text.convert(json_text.loads(body), _ReadFields)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(_validation_message(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None


def _validation_message(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if text.startswith("Object missing required field `"):
        field = text.split("`")[1]
        return f"{field}: Field required"
    message, _, location = text.partition(" - at `$.")
    if location:
        return f"{location.rstrip('`')}: {message}"
    return "Request body must be a JSON object"


class ProxyRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One client request to forward: raw bytes in, nothing re-encoded.

    ``body`` is None when the body streams through unread (files, batches): the caller then
    hands the stream to the use case alongside.
    """

    request_id: str
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    host: RequestHost
    body: bytes | None
    summary: MessagesSummary | None = None

    @property
    def target(self) -> str:
        """Path and query exactly as the client sent them (``?beta=true`` included)."""
        if self.query_string:
            return f"{self.path}?{self.query_string.decode('latin-1')}"
        return self.path
