"""``make run`` as a new user runs it: what it would execute, read with ``make -n`` (nothing runs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def commands() -> list[str]:
    make = shutil.which("make")
    assert make is not None, "make is part of the README's promise"
    # -B: as on a fresh machine, every step is due; -n: printed, not run.
    done = subprocess.run([make, "-n", "-B", "run"], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_make_run_installs_the_runtime_dependencies_only(commands: list[str]) -> None:
    syncs = [line for line in commands if " sync " in line]
    assert syncs, commands
    assert all("--no-dev" in line for line in syncs), syncs


def test_make_run_logs_as_text_unless_the_environment_says_otherwise(commands: list[str]) -> None:
    [serve] = [line for line in commands if "claude-nexus-proxy" in line]
    assert "LOG_FORMAT=${LOG_FORMAT:-text}" in serve
    assert "DASHBOARD_GENERATE_KEY=true" in serve
