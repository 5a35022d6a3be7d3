"""Prompt templates as the MCP prompt server serves them: what a prompt file must hold, and
which arguments a request is missing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
NAME_PATTERN = re.compile(_NAME)
PromptName = Annotated[str, msgspec.Meta(pattern=_NAME)]


class InvalidPrompt(ValueError):
    """A prompt file that cannot be served; the message says why, for the log and the API."""


class PromptArgument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: PromptName
    description: str | None = None
    required: bool = False


class Prompt(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: PromptName
    template: Annotated[str, msgspec.Meta(min_length=1)]
    description: str | None = None
    arguments: list[PromptArgument] = []


def prompt_from(document: Any, *, default_name: str) -> Prompt:
    """A prompt from a parsed file (``name`` defaults to the file's base name)."""
    if not isinstance(document, Mapping):
        raise InvalidPrompt("the file must hold a mapping with at least a `template`")
    values = dict(document)
    values.setdefault("name", default_name)
    try:
        prompt = msgspec.convert(values, Prompt, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidPrompt(str(exc)) from None
    names = [argument.name for argument in prompt.arguments]
    if len(set(names)) != len(names):
        raise InvalidPrompt("an argument is listed twice")
    return prompt


def missing_arguments(prompt: Prompt, given: Mapping[str, str] | None) -> list[str]:
    """The required arguments ``given`` lacks (empty text counts as missing)."""
    given = given or {}
    return [argument.name for argument in prompt.arguments if argument.required and not given.get(argument.name)]


def rendered_hash(text: str) -> str:
    """What a rendered prompt is found again by: the hash of its text, outer whitespace aside
    (a client may trim it or add a newline)."""
    return hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).hexdigest()


def first_user_text_hashes(body: Any) -> list[str]:
    """The hashes of each text of a Messages request's first user message: Claude Code sends
    a prompt got over MCP as one text block of its own, beside its command tags and reminders."""
    messages = body.get("messages") if isinstance(body, Mapping) else None
    users = (
        [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        if isinstance(messages, list)
        else []
    )
    content = users[0].get("content") if users else None
    blocks = content if isinstance(content, list) else [{"text": content}]
    texts = [block.get("text") for block in blocks if isinstance(block, Mapping)]
    return list(dict.fromkeys(rendered_hash(text) for text in texts if isinstance(text, str) and text.strip()))
