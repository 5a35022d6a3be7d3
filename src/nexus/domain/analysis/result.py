"""What an analysis of a conversation holds, as the model must answer it (camelCase JSON, the
original's field names), and the JSON Schema the model's structured-output mode is given."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from nexus.domain import json_text

Score = Annotated[int, msgspec.Meta(ge=0, le=10)]
Short = Annotated[str, msgspec.Meta(max_length=2000)]
Long = Annotated[str, msgspec.Meta(max_length=8000)]


class InvalidAnalysis(ValueError):
    """The model's answer is not an analysis; the message says where it went wrong."""


class ActionItem(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    type: Literal["task", "prompt_improvement", "follow_up"]
    description: Short
    priority: Literal["high", "medium", "low"] | None = None


class PromptingTip(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    category: Short
    issue: Short
    suggestion: Short
    example: Short | None = None


class InteractionPatterns(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    prompt_clarity: Score
    context_completeness: Score
    follow_up_effectiveness: Literal["excellent", "good", "needs_improvement"]
    common_issues: list[Short]
    strengths: list[Short]


class TechnicalDetails(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    frameworks: list[Short]
    issues: list[Short]
    solutions: list[Short]
    tool_usage_efficiency: Literal["optimal", "good", "needs_improvement"] | None = None
    context_window_management: Literal["efficient", "acceptable", "wasteful"] | None = None


class ConversationQuality(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    clarity: Literal["high", "medium", "low"]
    completeness: Literal["complete", "partial", "incomplete"]
    effectiveness: Literal["highly effective", "effective", "needs improvement"]
    clarity_improvement: Short | None = None
    completeness_improvement: Short | None = None
    effectiveness_improvement: Short | None = None


class ConversationAnalysis(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    summary: Long
    key_topics: list[Short]
    sentiment: Literal["positive", "neutral", "negative", "mixed"]
    user_intent: Long
    outcomes: list[Short]
    action_items: list[ActionItem]
    prompting_tips: list[PromptingTip]
    interaction_patterns: InteractionPatterns
    technical_details: TechnicalDetails
    conversation_quality: ConversationQuality


def analysis_schema() -> dict[str, Any]:
    """The JSON Schema of an analysis with every ``$ref`` inlined (structured-output modes take
    one self-contained object)."""
    (root,), components = msgspec.json.schema_components([ConversationAnalysis], ref_template="#/$defs/{name}")
    inlined: dict[str, Any] = _inline(root, components)
    return inlined


def parse_analysis(data: bytes | str | Any) -> ConversationAnalysis:
    """An analysis from the model's JSON text or decoded object; ``{"analysis": {...}}`` (the
    original's envelope) is accepted too."""
    try:
        # json_text: a model's answer is outside input like any other (lone surrogates, nesting
        # past the decoder's stack, bytes that are no UTF-8 are refused as not JSON, not raised).
        value = json_text.loads(data) if isinstance(data, bytes | str) else data
        if isinstance(value, dict) and set(value) == {"analysis"}:
            value = value["analysis"]
        return json_text.convert(value, ConversationAnalysis)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidAnalysis(str(exc)) from None


def analysis_dict(analysis: ConversationAnalysis) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(analysis)
    return built


_DROPPED = frozenset({"title", "default"})  # annotations some structured-output modes refuse


def _inline(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            return _inline(components[ref.rsplit("/", 1)[-1]], components)
        inlined = {key: _inline(value, components) for key, value in node.items() if key not in _DROPPED}
        if "enum" in inlined and "type" not in inlined and all(isinstance(item, str) for item in inlined["enum"]):
            inlined["type"] = "string"  # Gemini wants a type beside an enum
        return inlined
    if isinstance(node, list):
        return [_inline(item, components) for item in node]
    return node
