"""Text rules shared by the hashing functions, matching the original's JavaScript behaviour."""

from __future__ import annotations

import re

# JavaScript's String.prototype.trim() and regex \s: Unicode white space plus U+FEFF, which
# Python's str.strip() keeps. Hashes computed by the original depend on the difference.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_OPENING = re.compile("<system-reminder>", re.IGNORECASE)
# A str decoded from JSON holds a surrogate code point only where the JSON had a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REMINDER = re.compile("<system-reminder>.*?</system-reminder>", re.IGNORECASE | re.DOTALL)


def js_trim(text: str) -> str:
    return text.strip(JS_WHITESPACE)


def js_utf8(text: str) -> bytes:
    """The UTF-8 bytes Node.js hashes for a string: a lone surrogate becomes U+FFFD.

    Claude Code sends lone surrogates when it cuts a string inside an emoji; Python's encoder
    refuses them, Node's replaces them, and the hashes must agree with the original's.
    """
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def js_escape_surrogates(text: str) -> str:
    """Lone surrogates as ``\\udxxx`` escapes, as ``JSON.stringify`` writes them."""
    if text.isascii():
        return text
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def strip_system_reminders(text: str) -> str:
    """Remove every ``<system-reminder>…</system-reminder>`` and the white space before it.

    Claude Code wraps volatile context (todo lists, file-change notices, dates) in these tags;
    they change between turns of one conversation, so they carry no identity.
    """
    # Tool results are often whole files: look for the tag once before doing any work, and strip
    # the white space before each reminder by hand (a leading ``\s*`` in the pattern made the
    # regex engine retry at every white space character of the text).
    if _OPENING.search(text) is None:
        return text
    pieces: list[str] = []
    position = 0
    for reminder in _REMINDER.finditer(text):
        pieces.append(text[position : reminder.start()].rstrip(JS_WHITESPACE))
        position = reminder.end()
    pieces.append(text[position:])
    return "".join(pieces)


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())
