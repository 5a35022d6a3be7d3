"""Rendering a prompt's template: Jinja's immutable sandbox, arguments as plain text only.

The sandbox refuses attribute access to Python internals (``__class__``, ``mro`` ...) and
changes to objects; only the declared arguments are in scope, each a ``str``, so a template
cannot reach the proxy's objects. An undefined name renders as an error, not as "".
"""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from nexus.domain.prompts import InvalidPrompt, Prompt

_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class RenderFailed(ValueError):
    pass


def check_template(prompt: Prompt) -> None:
    """Raise InvalidPrompt when the template does not even parse."""
    try:
        _ENVIRONMENT.parse(prompt.template)
    except TemplateError as exc:
        raise InvalidPrompt(f"the template does not parse: {exc}") from None


def render(prompt: Prompt, arguments: Mapping[str, str]) -> str:
    declared = {argument.name for argument in prompt.arguments}
    values = {name: str(value) for name, value in arguments.items() if name in declared}
    for name in declared - values.keys():
        values[name] = ""  # an optional argument left out reads as empty
    try:
        return _ENVIRONMENT.from_string(prompt.template).render(values)
    except TemplateError as exc:
        raise RenderFailed(f"the template cannot be rendered: {exc}") from None
