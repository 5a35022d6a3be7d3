"""What the analysing model is asked: the default brief, or the user's own, always answered in
the analysis schema (the structured-output mode enforces it; the brief says what goes where)."""

from __future__ import annotations

MAX_CUSTOM_PROMPT = 4000

DEFAULT_BRIEF = """\
You review a conversation between a developer and Claude Code, an AI coding assistant, to help
the developer get more out of it. The conversation follows, one turn per message; tool calls
appear as [Tool use: name], and secrets were replaced by [REDACTED_...] labels.

Answer with one JSON object of the given schema:
- summary: what happened, in a few sentences.
- keyTopics: the subjects worked on.
- sentiment: the developer's overall mood.
- userIntent: what the developer was trying to achieve.
- outcomes: what was achieved, or not.
- actionItems: concrete next steps (task, prompt_improvement or follow_up).
- promptingTips: how the developer could prompt better, each with the issue seen and a suggestion.
- interactionPatterns: prompt clarity and context completeness from 0 to 10, follow-up
  effectiveness, common issues and strengths.
- technicalDetails: frameworks and tools involved, problems met, solutions found.
- conversationQuality: clarity, completeness and effectiveness, with how to improve each.
Judge only what the conversation shows; do not invent details."""

REMINDER = (
    "Your previous answer was not valid for the schema ({problem}). Answer again with only the JSON object,"
    " every required field present."
)


def brief(custom_prompt: str | None) -> str:
    """The default brief, or the user's prompt followed by the schema's field guide."""
    if not custom_prompt:
        return DEFAULT_BRIEF
    return f"{custom_prompt.strip()}\n\n{DEFAULT_BRIEF}"
