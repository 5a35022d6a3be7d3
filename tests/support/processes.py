"""The ``claude-nexus-proxy`` command run as users run it: a separate process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

COMMAND = [sys.executable, "-m", "nexus"]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a CLI command to completion, with only the given settings in its environment."""
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd, env=_environment(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProxyProcess:
    """``claude-nexus-proxy -p PORT`` in the background, stopped with SIGTERM."""

    def __init__(self, *, cwd: Path, env: dict[str, str], args: tuple[str, ...] = (), port: int | None = None) -> None:
        self.port = port or free_port()
        self._process = subprocess.Popen(
            [*COMMAND, "-H", "127.0.0.1", "-p", str(self.port), *args],
            cwd=cwd,
            env=_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20) -> ProxyProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"proxy exited early:\n{self.stop()}")
            try:
                httpx.get(f"{self.url}/api/hello", timeout=0.5)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"proxy not ready in {timeout}s:\n{self.stop()}")

    @property
    def pid(self) -> int:
        return self._process.pid

    def signal(self, number: int) -> None:
        self._process.send_signal(number)

    def wait_exit(self, timeout: float) -> int:
        """The exit status once the process has ended by itself."""
        return self._process.wait(timeout=timeout)

    def stop(self) -> str:
        self.output += _stop(self._process)
        return self.output


class WorkerProcess:
    """``claude-nexus-proxy worker`` in the background: stopped with SIGTERM, or killed."""

    def __init__(self, *, cwd: Path, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [*COMMAND, "worker"],
            cwd=cwd,
            env=_environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill(self) -> None:
        self._process.kill()
        self._process.wait(timeout=10)

    def stop(self) -> str:
        """The process's output, once it has ended (SIGTERM, then SIGKILL after 10 s)."""
        return _stop(self._process)


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, SIGKILL after 10 s; what the process wrote."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    out, _ = process.communicate()
    return out or ""


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    # Start from a clean slate so a developer's own settings cannot leak into a test; storage
    # stays off (no embedded server per process) unless a test asks for it.
    base = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"}}
    return {**base, "STORAGE_ENABLED": "false", **(extra or {})}
