"""The original's settings this proxy does not read: each named with advice, and in the README."""

from __future__ import annotations

from pathlib import Path

from nexus.entrypoints.original_settings import UNSUPPORTED, UNSUPPORTED_PREFIXES, unsupported_in
from nexus.entrypoints.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_present_settings_of_the_original_are_found_with_their_advice() -> None:
    found = unsupported_in(
        {"NODE_ENV": "production", "DB_HOST": "db", "AI_ANALYSIS_ENABLE_X": "1", "SPARK_ENABLED": " ", "PORT": "1"}
    )
    assert [name for name, _ in found] == ["AI_ANALYSIS_ENABLE_X", "DB_HOST", "NODE_ENV"]
    assert dict(found)["DB_HOST"].startswith("set DATABASE_URL")


def test_no_name_is_both_a_setting_here_and_unsupported() -> None:
    ours = {field.upper() for field in Settings.__struct_fields__}
    assert ours & UNSUPPORTED.keys() == set()


def test_the_readme_table_for_users_of_the_original_lists_every_name() -> None:
    text = README.read_text()
    section = text[text.index("## Coming from claude-nexus-proxy") :]
    section = section[: section.index("\n## ", 4)]
    missing = [name for name in [*UNSUPPORTED, *UNSUPPORTED_PREFIXES] if f"`{name}" not in section]
    assert missing == []
