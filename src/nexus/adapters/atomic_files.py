"""Files replaced in one rename, so a reader (another worker, a crash's restart) sees the old
content or the new one, never a torn write."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: Path, data: bytes, *, new_file_mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``, durable; a new file gets ``new_file_mode``, an existing
    one keeps its mode."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = new_file_mode
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_json_atomically(path: Path, document: object, *, new_file_mode: int = 0o600) -> None:
    data = (json.dumps(document, indent=2) + "\n").encode()
    write_bytes_atomically(path, data, new_file_mode=new_file_mode)
