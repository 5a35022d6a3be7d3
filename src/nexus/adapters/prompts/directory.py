"""Prompts from the YAML files of one directory (``MCP_PROMPTS_DIR``), read again whenever a
file is added, changed or removed (a listing of names, sizes and mtimes is compared)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import yaml

from nexus.adapters.prompts.render import check_template
from nexus.application.ports.prompts import PromptEntry
from nexus.domain.prompts import InvalidPrompt, Prompt, prompt_from

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 256 * 1024

_Listing = tuple[tuple[str, int, int], ...]


class DirectoryPrompts:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._listing: _Listing | None = None
        self._entries: list[PromptEntry] = []
        self._by_name: dict[str, Prompt] = {}
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def entries(self) -> list[PromptEntry]:
        return list(self._entries)

    def get(self, name: str) -> Prompt | None:
        return self._by_name.get(name)

    async def refresh(self) -> bool:
        return await asyncio.to_thread(self._refresh)

    def _refresh(self) -> bool:
        listing = self._list()
        if listing == self._listing:
            return False
        self._listing = listing
        entries: list[PromptEntry] = []
        by_name: dict[str, Prompt] = {}
        for file_name, _size, _mtime in listing:
            entry = self._read(self._directory / file_name)
            if entry.prompt is not None and entry.name in by_name:
                entry = PromptEntry(
                    file=file_name, name=entry.name, problem=f"the name {entry.name!r} is already used by another file"
                )
            if entry.prompt is not None:
                by_name[entry.name] = entry.prompt
            else:
                log.warning("Prompt file %s is skipped: %s", file_name, entry.problem)
            entries.append(entry)
        self._entries = sorted(entries, key=lambda entry: (entry.name, entry.file))
        self._by_name = by_name
        self._version += 1
        return True

    def _list(self) -> _Listing:
        try:
            found = [
                (path.name, stat.st_size, stat.st_mtime_ns)
                for path in self._directory.iterdir()
                if path.suffix in SUFFIXES and path.is_file() and not path.name.startswith(".")
                for stat in (path.stat(),)
            ]
        except FileNotFoundError:
            return ()
        return tuple(sorted(found))

    @staticmethod
    def _read(path: Path) -> PromptEntry:
        default = path.stem
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InvalidPrompt(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            prompt = prompt_from(document, default_name=default)
            check_template(prompt)
        except InvalidPrompt as exc:
            return PromptEntry(file=path.name, name=default, problem=str(exc))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            return PromptEntry(file=path.name, name=default, problem=f"the file cannot be read: {_short(exc)}")
        return PromptEntry(file=path.name, name=prompt.name, prompt=prompt)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
