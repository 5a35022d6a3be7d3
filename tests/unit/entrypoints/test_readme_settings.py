"""The README's configuration table names every setting (the Settings docstring promises it)."""

from __future__ import annotations

from pathlib import Path

from nexus.entrypoints.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_setting_has_a_row_in_the_readme_configuration_table() -> None:
    rows = {line.split("|")[1].strip() for line in README.read_text().splitlines() if line.startswith("| `")}
    named = {name for row in rows for name in row.replace("`", " ").split()}
    assert [field.upper() for field in Settings.__struct_fields__ if field.upper() not in named] == []
