"""Which requests are threaded into conversations.

The original threads only ``inference`` requests: two or more system blocks, which is what
Claude Code's conversation turns send. A plain SDK client sends none or one, so its
multi-turn conversations were classed ``query_evaluation`` and never threaded. By default
(``any_client``) a ``query_evaluation`` request is threaded too unless Claude Code sent it:
Claude Code's own side calls (titles, topic checks) still stay out of the trees, while
every other client's turns, first turn included, form conversations. ``original`` keeps the
original's rule.
"""

from __future__ import annotations

from typing import Literal

ThreadRule = Literal["any_client", "original"]

CLAUDE_CODE_AGENTS = ("claude-cli/", "claude-code/")


def sent_by_claude_code(session_id: str | None, user_agent: str | None) -> bool:
    return session_id is not None or (user_agent or "").lower().startswith(CLAUDE_CODE_AGENTS)


def is_threaded(request_type: str | None, *, session_id: str | None, user_agent: str | None, rule: ThreadRule) -> bool:
    if request_type == "inference":
        return True
    return (
        rule == "any_client" and request_type == "query_evaluation" and not sent_by_claude_code(session_id, user_agent)
    )


def why_not_threaded(
    request_type: str | None,
    *,
    path: str,
    session_id: str | None,
    user_agent: str | None,
    rule: ThreadRule,
    link_pending: bool,
) -> str:
    """What a request page says about a request that has no conversation.

    ``link_pending`` is the row's own word that the linker has it queued: only then is the
    request still to be threaded. Every other request without a conversation never will be,
    and the reason is said plainly rather than as if it were waiting.
    """
    if not path.startswith("/v1/messages") or path.startswith("/v1/messages/"):
        return "not a conversation turn: only /v1/messages requests are threaded"
    if link_pending:
        return "not linked yet: waiting for the linker, which threads new requests in the background"
    return _never_queued(request_type, sent_by_claude_code(session_id, user_agent), rule)


def _never_queued(request_type: str | None, claude_code: bool, rule: ThreadRule) -> str:
    """Why a Messages request was recorded without being queued for the linker."""
    if request_type is None:
        return "not threaded: there was no Messages request body to read (an empty body, or not a POST)"
    if request_type == "quota":
        return "not threaded: Claude Code's quota probe"
    if request_type == "query_evaluation" and claude_code:
        return "not threaded: a side call of Claude Code (a title or topic check: fewer than two system blocks)"
    if request_type == "query_evaluation" and rule == "original":
        return "not threaded: fewer than two system blocks, and THREAD_RULE=original threads only inference"
    # A threadable request that was never queued: recorded when the rule in force did not thread
    # it (THREAD_RULE was changed since), so it has none of the facts the linker threads by.
    return "not threaded: recorded without conversation facts (under another THREAD_RULE), so the linker never had it"
