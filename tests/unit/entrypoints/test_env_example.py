""".env.example names every variable the code reads, each with a comment and its real default."""

from __future__ import annotations

import re
from pathlib import Path

import opentelemetry.sdk.environment_variables as otel_sdk_variables

from nexus.adapters.telemetry import otel
from nexus.entrypoints.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = ROOT / ".env.example"
# A setting is a commented-out assignment: copying the file to .env changes nothing.
_ASSIGNMENT = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")
# Variables read straight from the environment, outside Settings: os.environ.get("X"), environ["X"].
_DIRECT_READ = re.compile(r"""environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")


def _assignments() -> list[tuple[str, str, str]]:
    """(name, default, the comment line above it), in file order."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match:
            found.append((match.group(1), match.group(2), lines[number - 1] if number else ""))
    return found


def _read_directly() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src" / "nexus").rglob("*.py"):
        names |= set(_DIRECT_READ.findall(path.read_text()))
    return names | set(otel._ENDPOINT_VARIABLES)


def test_every_setting_and_every_variable_read_directly_is_listed_once() -> None:
    names = [name for name, _, _ in _assignments()]
    assert len(names) == len(set(names)), "a variable is listed twice"
    listed = set(names)
    settings = {field.upper() for field in Settings.__struct_fields__}
    assert sorted(settings - listed) == [], "settings missing from .env.example"
    assert sorted(_read_directly() - listed) == [], "variables the code reads missing from .env.example"


def test_nothing_listed_is_unknown_to_the_code() -> None:
    settings = {field.upper() for field in Settings.__struct_fields__}
    others = {name for name, _, _ in _assignments()} - settings - _read_directly()
    # The rest are OpenTelemetry's standard variables, which the SDK reads itself.
    unknown = sorted(name for name in others if not (name.startswith("OTEL_") and hasattr(otel_sdk_variables, name)))
    assert unknown == []


def test_each_variable_has_a_one_line_comment_above_it() -> None:
    for name, _, comment in _assignments():
        assert comment.startswith("# "), name
        assert not _ASSIGNMENT.match(comment), f"{name} has no comment of its own"


def test_the_defaults_written_are_the_defaults() -> None:
    settings = {field.upper() for field in Settings.__struct_fields__}
    written = {name: value for name, value, _ in _assignments() if name in settings}
    # An empty value counts as unset, so the listed file as a whole must give the defaults.
    assert load_settings(written) == Settings()
    for name, value in written.items():
        # And each non-empty value is that setting's own default, not just a valid value.
        if value:
            assert load_settings({name: value}) == Settings(), name
