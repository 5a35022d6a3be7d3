"""What kind of call a ``/v1/messages`` request is, by the original proxy's rules.

``quota`` is Claude Code's one-token probe, ``query_evaluation`` a small side call (title,
topic, safety check) and ``inference`` a real conversation turn. The original stores only
``inference``; the kind is decided from the request body alone, before forwarding.

One deliberate change from the original: Claude Code 2.x puts an attribution block
(``x-anthropic-billing-header: ...``) at the head of every system array. It is not a
prompt, so it is not counted; otherwise its side calls would all look like inference.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from nexus.domain import json_text
from nexus.domain.prompt_text import prompt_text

RequestType = Literal["quota", "query_evaluation", "inference"]

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _Message(msgspec.Struct):
    role: str = ""
    content: str | list[_Block] | None = None


class _Body(msgspec.Struct):
    system: str | list[_Block] | None = None
    messages: list[_Message] = msgspec.field(default_factory=list)


_body = json_text.decoder(_Body)


def classify_request(body: bytes) -> RequestType:
    """Classify the raw JSON body of a ``/v1/messages`` request.

    Args:
        body: The request body as sent by the client.

    Returns:
        ``quota``, ``query_evaluation`` or ``inference``. A body that is not JSON or does
        not have the Messages shape gives ``query_evaluation``: upstream will reject it,
        and the original never stored such a request either.
    """
    try:
        return _classify(_body(body))
    except msgspec.MsgspecError:
        return "query_evaluation"


class RequestReading(msgspec.Struct, frozen=True):
    """What the recorder reads of a Messages body in one decode: its kind, and the text of
    its last user message (``prompt_text``)."""

    request_type: RequestType
    prompt_text: str | None


def read_request(body: bytes) -> RequestReading:
    """:func:`classify_request` and the last user message's text, from one typed decode."""
    try:
        decoded = _body(body)
    except msgspec.MsgspecError:
        return RequestReading("query_evaluation", None)
    last_user = _last_user(decoded.messages)
    return RequestReading(_classify(decoded), prompt_text(_texts(last_user.content)) if last_user else None)


def classify_decoded(body: object) -> RequestType:
    """Classify a request body that was already decoded into Python objects.

    Args:
        body: The decoded JSON (normally a ``dict``).

    Returns:
        The same answer as :func:`classify_request` for the same JSON.
    """
    try:
        return _classify(json_text.convert(body, _Body))
    except msgspec.MsgspecError:
        return "query_evaluation"


def _classify(body: _Body) -> RequestType:
    if _is_quota_probe(body.messages):
        return "quota"
    system_count = _system_block_count(body.system) + sum(1 for m in body.messages if m.role == "system")
    return "inference" if system_count >= 2 else "query_evaluation"


def _is_quota_probe(messages: list[_Message]) -> bool:
    last_user = _last_user(messages)
    if last_user is None:
        return False
    return "\n".join(_texts(last_user.content)).strip().lower() == "quota"


def _last_user(messages: list[_Message]) -> _Message | None:
    return next((m for m in reversed(messages) if m.role == "user"), None)


def _texts(content: str | list[_Block] | None) -> list[str]:
    if isinstance(content, str):
        return [content]
    if content is None:
        return []
    return [block.text or "" for block in content if block.type == "text"]


def _system_block_count(system: str | list[_Block] | None) -> int:
    if isinstance(system, str):
        # A bare string is one block; the attribution rule applies to it too, for consistency.
        return int(system != "" and not system.startswith(BILLING_HEADER_PREFIX))
    if system is None:
        return 0
    return sum(1 for block in system if not (block.text or "").startswith(BILLING_HEADER_PREFIX))
