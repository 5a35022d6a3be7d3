"""Slack messages for an exchange: what is said, and how it is written safely (Block Kit).

Prompt text reaches a team channel, so it is written as data, never as markup: ``&``, ``<``
and ``>`` are escaped (Slack's only control characters in mrkdwn), which also defuses
``<!channel>``, ``<@U123>`` and links a prompt might carry; the payload never asks Slack to
link plain ``@names``. A section's text is limited to 3,000 characters by Slack.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from nexus.domain.limit_alerts import Culprit, LimitAlert

REPLY_LINES = 20
SECTION_LIMIT = 3000
_ELLIPSIS = "…"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class SlackTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where a domain's messages go (the webhook is a secret: it is never logged or shown)."""

    webhook_url: str
    channel: str | None = None
    username: str = "Claude Nexus Proxy"
    icon_emoji: str = ":robot_face:"


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    request_id: str
    user_text: str
    reply_text: str
    tools: list[str]
    model: str | None
    key_hint: str | None
    input_tokens: int | None
    output_tokens: int | None


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # upstream_error, rejected, truncated, recorder, circuit_open, runaway
    domain: str
    request_id: str | None
    detail: str
    suppressed: int = 0  # how many of this kind the minute before were not sent


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, *, lines: int | None = None, chars: int = SECTION_LIMIT) -> str:
    """``text`` within ``lines`` lines and ``chars`` characters, an ellipsis marking a cut."""
    kept = text
    if lines is not None:
        split = kept.split("\n")
        if len(split) > lines:
            kept = "\n".join(split[:lines]) + "\n" + _ELLIPSIS
    if len(kept) > chars:
        kept = kept[: chars - 1] + _ELLIPSIS
    return kept


def _section(text: str) -> dict[str, Any]:
    # Escaping can lengthen the text (``<`` is 4 characters): cut after escaping.
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text)}}


def _context(parts: list[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(" · ".join(parts))}]}


def _envelope(target: SlackTarget, fallback: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "text": cut(escape(fallback), chars=300),  # notifications and clients without blocks
        "blocks": blocks,
        "username": target.username,
        "icon_emoji": target.icon_emoji,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if target.channel:
        payload["channel"] = target.channel
    return payload


def conversation_payload(target: SlackTarget, turn: Conversation) -> dict[str, Any]:
    blocks = [
        _section("*User:* " + escape(cut(turn.user_text, chars=SECTION_LIMIT))),
        _section("*Claude:* " + escape(cut(turn.reply_text or "(no text)", lines=REPLY_LINES))),
    ]
    if turn.tools:
        blocks.append(_section("*Tools:* " + escape(", ".join(turn.tools))))
    footer = [f"*{escape(turn.domain)}*", escape(turn.model or "unknown model")]
    if turn.key_hint:
        footer.append(f"key {escape(turn.key_hint)}")
    footer.append(f"{turn.input_tokens or 0:,} in / {turn.output_tokens or 0:,} out tokens")
    footer.append(f"`{escape(turn.request_id)}`")
    blocks.append(_context(footer))
    return _envelope(target, f"{turn.domain}: {turn.user_text}", blocks)


_TITLES = {
    "upstream_error": "Upstream error",
    "rejected": "Request rejected by the proxy",
    "truncated": "Stream cut short",
    "recorder": "Recording trouble",
    "circuit_open": "Circuit open: upstream is failing",
    "runaway": "Runaway session held back",
}


def problem_payload(target: SlackTarget, problem: Problem) -> dict[str, Any]:
    title = _TITLES.get(problem.kind, problem.kind)
    blocks = [_section(f":warning: *{escape(title)}* on *{escape(problem.domain)}*\n{escape(problem.detail)}")]
    footer = [f"request `{escape(problem.request_id)}`" if problem.request_id else "no request"]
    if problem.suppressed:
        footer.append(f"{problem.suppressed} more like it in the last minute not sent")
    blocks.append(_context(footer))
    return _envelope(target, f"{title} on {problem.domain}: {problem.detail}", blocks)


def limit_alert_payload(target: SlackTarget, alert: LimitAlert) -> dict[str, Any]:
    """An account near (or past) a limit, with who used the window most."""
    icon = ":rotating_light:" if (alert.threshold or 0) >= 100 or alert.status == "rejected" else ":warning:"
    blocks = [_section(f"{icon} *Limit alert:* {escape(alert.headline)}")]
    if alert.culprits:
        lines = [f"• {escape(_culprit_line(culprit))}" for culprit in alert.culprits]
        blocks.append(_section("*Most tokens in this window:*\n" + "\n".join(lines)))
    footer = [f"*{escape(alert.domain or alert.account_id)}*", escape(alert.name)]
    blocks.append(_context(footer))
    return _envelope(target, alert.headline, blocks)


def _culprit_line(culprit: Culprit) -> str:
    title = cut(culprit.title, chars=80) if culprit.title else culprit.id
    return f"{culprit.kind} “{title}”: {culprit.tokens:,} tokens, {culprit.requests} requests ({culprit.id})"


def key_hint(secret: str | None) -> str | None:
    """The last four characters of a key, which identify it to its owner and to nobody else."""
    if not secret or len(secret) < 12:
        return None
    return "…" + secret[-4:]


def webhook_allowed(url: str) -> bool:
    """https, or http to this machine (a receiver in tests): a webhook carries prompts."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK)
