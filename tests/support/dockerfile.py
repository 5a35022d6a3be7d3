"""Reading the project's Dockerfile and .dockerignore as Docker does, for the deployment tests.

Only the forms the project's Dockerfile uses are understood (exec-form ENTRYPOINT, CMD and
HEALTHCHECK, ``ENV KEY=value``); anything else fails loudly rather than being misread.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Stage:
    base: str
    name: str | None
    env: list[tuple[str, str]] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)  # (--from, sources, dest)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    healthcheck: tuple[dict[str, str], list[str]] | None = None  # (options, exec-form command)
    user: str | None = None
    workdir: str | None = None
    volumes: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Image:
    """What a target ends up with, its base stages' settings included."""

    env: list[tuple[str, str]]
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: tuple[dict[str, str], list[str]] | None
    user: str | None
    workdir: str | None
    volumes: list[str]
    exposed: list[str]

    @property
    def command(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.stages: list[Stage] = []
        for instruction, rest in _instructions(path.read_text()):
            self._add(instruction, rest)

    def stage(self, name: str) -> Stage:
        (found,) = [stage for stage in self.stages if stage.name == name]
        return found

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages if stage.name]

    def external_bases(self) -> list[str]:
        """The images pulled from a registry (a FROM that names no earlier stage)."""
        names: set[str] = set()
        bases = []
        for stage in self.stages:
            if stage.base not in names:
                bases.append(stage.base)
            if stage.name:
                names.add(stage.name)
        return bases

    def image(self, target: str) -> Image:
        chain = [self.stage(target)]
        while chain[-1].base in self.stage_names:
            chain.append(self.stage(chain[-1].base))
        chain.reverse()
        env: list[tuple[str, str]] = []
        entrypoint: list[str] = []
        cmd: list[str] = []
        healthcheck = None
        user = workdir = None
        volumes: list[str] = []
        exposed: list[str] = []
        for stage in chain:
            env += stage.env
            if stage.entrypoint is not None:
                entrypoint, cmd = stage.entrypoint, []  # a new ENTRYPOINT resets CMD, as in Docker
            cmd = stage.cmd if stage.cmd is not None else cmd
            healthcheck = stage.healthcheck or healthcheck
            user = stage.user or user
            workdir = stage.workdir or workdir
            volumes += stage.volumes
            exposed += stage.exposed
        return Image(env, entrypoint, cmd, healthcheck, user, workdir, volumes, exposed)

    def _add(self, instruction: str, rest: str) -> None:
        if instruction == "FROM":
            words = rest.split()
            assert len(words) in (1, 3), f"FROM {rest}"
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            self.stages.append(Stage(base=words[0], name=name))
            return
        assert self.stages, f"{instruction} before any FROM"
        stage = self.stages[-1]
        if instruction in ("ENV", "ARG", "COPY", "HEALTHCHECK"):
            getattr(self, f"_{instruction.lower()}")(stage, rest)
        elif instruction in ("ENTRYPOINT", "CMD"):
            setattr(stage, instruction.lower(), _exec_form(instruction, rest))
        elif instruction == "RUN":
            stage.runs.append(rest)
        elif instruction in ("USER", "WORKDIR"):
            setattr(stage, instruction.lower(), rest.strip())
        elif instruction == "VOLUME":
            stage.volumes += _exec_form(instruction, rest)
        elif instruction == "EXPOSE":
            stage.exposed += rest.split()
        else:
            raise AssertionError(f"instruction {instruction} is not understood by tests/support/dockerfile.py")

    @staticmethod
    def _env(stage: Stage, rest: str) -> None:
        for word in shlex.split(rest):
            key, equals, value = word.partition("=")
            assert equals, f"ENV {rest}: only the KEY=value form is understood"
            stage.env.append((key, value))

    @staticmethod
    def _arg(stage: Stage, rest: str) -> None:
        key, _, value = rest.strip().partition("=")
        stage.args[key] = value

    @staticmethod
    def _copy(stage: Stage, rest: str) -> None:
        words = shlex.split(rest)
        flags = [word for word in words if word.startswith("--")]
        paths = [word for word in words if not word.startswith("--")]
        source = next((flag.removeprefix("--from=") for flag in flags if flag.startswith("--from=")), None)
        stage.copies.append((source, paths[:-1], paths[-1]))

    @staticmethod
    def _healthcheck(stage: Stage, rest: str) -> None:
        options, _, command = rest.partition(" CMD ")
        parsed = dict(option.removeprefix("--").split("=", 1) for option in options.split())
        stage.healthcheck = (parsed, _exec_form("HEALTHCHECK", command))


def _exec_form(instruction: str, text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list), f"{instruction} must be in exec (JSON) form"
    return [str(item) for item in value]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments): comment lines dropped (inside continuations too), continuations joined."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            logical.append(pending.strip())
        pending = ""
    found = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        found.append((instruction.upper(), re.sub(r"\s+", " ", rest).strip()))
    return found


def expand(value: str, environment: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` as ENV expands them (unset: empty)."""
    return _VARIABLE.sub(lambda match: environment.get(match.group(1) or match.group(2), ""), value)


class DockerIgnore:
    """.dockerignore rules: the last pattern matching a path (or one of its parent folders) decides."""

    def __init__(self, path: Path) -> None:
        self._rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = line.removeprefix("!").strip("/")
            self._rules.append((negated, re.compile(_translate(pattern))))

    def excluded(self, relative: str) -> bool:
        parts = relative.strip("/").split("/")
        prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        verdict = False
        for negated, rule in self._rules:
            if any(rule.fullmatch(prefix) for prefix in prefixes):
                verdict = not negated
        return verdict


def _translate(pattern: str) -> str:
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return "".join(out)
