"""Markdown to safe HTML: CommonMark plus tables and strikethrough, raw HTML escaped.

Links keep only ``http``, ``https`` and ``mailto`` destinations (anything else stays literal
text) and open nothing by themselves: ``rel="noopener noreferrer nofollow"``, no ``target``.
Images are never loaded (the dashboard fetches no third-party URL): an image becomes a link to
its address labelled with its alt text. Table alignment comes out as ``md-align-*`` classes
instead of the inline ``style`` markdown-it writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

__all__ = ["LINK_REL", "is_safe_url", "render_markdown"]

LINK_REL = "noopener noreferrer nofollow"
_SAFE_URL = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_ALIGNMENTS = frozenset({"left", "right", "center"})


def is_safe_url(url: str) -> bool:
    """Whether a link may point at ``url``: an absolute http, https or mailto address."""
    return _SAFE_URL.match(url.strip()) is not None


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    href = token.attrGet("href")
    if not isinstance(href, str) or not is_safe_url(href):
        # validateLink already refused such links at parse time; an <a> without href is inert.
        token.attrs.pop("href", None)
    token.attrs.pop("target", None)
    token.attrSet("rel", LINK_REL)
    return self.renderToken(tokens, idx, options, env)


def _inside_link(tokens: Sequence[Token], idx: int) -> bool:
    depth = 0
    for token in tokens[:idx]:
        depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
    return depth > 0


def _image(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    label = escapeHtml(f"[image: {alt}]" if alt else "[image]")
    src = token.attrGet("src")
    if not isinstance(src, str) or not is_safe_url(src) or _inside_link(tokens, idx):
        return f'<span class="md-image">{label}</span>'
    return f'<a class="md-image" href="{escapeHtml(src)}" rel="{LINK_REL}">{label}</a>'


def _table_cell(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    style = token.attrs.pop("style", None)
    if isinstance(style, str):
        alignment = style.removeprefix("text-align:")
        if alignment in _ALIGNMENTS:
            token.attrSet("class", f"md-align-{alignment}")
    return self.renderToken(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.validateLink = is_safe_url  # type: ignore[method-assign]
    parser.add_render_rule("link_open", _link_open)
    parser.add_render_rule("image", _image)
    parser.add_render_rule("th_open", _table_cell)
    parser.add_render_rule("td_open", _table_cell)
    return parser


_MARKDOWN = _parser()


def render_markdown(text: str) -> Markup:
    """``text`` as HTML; raw HTML in it is escaped, never passed through."""
    return Markup(_MARKDOWN.render(text))  # noqa: S704 - markdown-it escapes all text and attributes (html=False)
