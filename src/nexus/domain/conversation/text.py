"""Text rules shared by the hashing functions, matching the original's JavaScript behaviour."""

from __future__ import annotations

import re

# JavaScript's String.prototype.trim() and regex \s: Unicode white space plus U+FEFF, which
# Python's str.strip() keeps. Hashes computed by the original depend on the difference.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_REMINDER = re.compile(rf"[{JS_WHITESPACE}]*<system-reminder>.*?</system-reminder>", re.IGNORECASE | re.DOTALL)


def js_trim(text: str) -> str:
    return text.strip(JS_WHITESPACE)


def strip_system_reminders(text: str) -> str:
    """Remove every ``<system-reminder>…</system-reminder>`` and the white space before it.

    Claude Code wraps volatile context (todo lists, file-change notices, dates) in these tags;
    they change between turns of one conversation, so they carry no identity.
    """
    if "<" not in text:
        return text
    return _REMINDER.sub("", text)


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())
