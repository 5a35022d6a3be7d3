"""The dashboard's login key and session secret: configured, or kept under ``NEXUS_DATA_DIR``.

The key comes from ``DASHBOARD_API_KEY``; else from the file an earlier start generated (with
``DASHBOARD_GENERATE_KEY``, which ``make run`` sets); else there is none and the dashboard only
says how to set one. The session secret comes from ``DASHBOARD_SESSION_SECRET``, else from its
file, generated on first use. Files are created once, atomically and readable by the owner
only, so every worker process (and every restart) agrees on them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path

import msgspec

log = logging.getLogger(__name__)
KEY_FILE = "dashboard-api-key"
SECRET_FILE = "dashboard-session-secret"  # noqa: S105 -- a file name


class DashboardKeys(msgspec.Struct, frozen=True):
    api_key: str | None
    session_secret: bytes  # 32 bytes: AES-256-GCM for the session cookie
    generated_key: bool = False  # the key was created just now (show it once)


def resolve_keys(
    *, api_key: str | None, session_secret: str | None, data_dir: str, generate_key: bool
) -> DashboardKeys:
    directory = Path(data_dir)
    generated = False
    if not api_key:
        api_key = _read(directory / KEY_FILE)
        if api_key is None and generate_key:
            api_key, generated = _create_once(directory / KEY_FILE, f"cnd_{secrets.token_urlsafe(32)}")
    secret_text = session_secret or _read(directory / SECRET_FILE)
    if secret_text is None:
        secret_text, _ = _create_once(directory / SECRET_FILE, secrets.token_urlsafe(48))
    # Any length of configured secret becomes the 32 bytes the cipher needs.
    return DashboardKeys(api_key, hashlib.sha256(secret_text.encode()).digest(), generated)


def _read(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def _create_once(path: Path, value: str) -> tuple[str, bool]:
    """Write ``value`` to ``path`` unless another process did first; the file's value wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # atomic and exclusive: fails if the file exists
        created = True
    except FileExistsError:
        created = False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    existing = _read(path)
    assert existing is not None
    return existing, created
