"""``GET /client-setup/{filename}``: files a team's client machines fetch at set-up (the
original served Claude Code's ``.credentials.json`` and ``.claude.json`` this way).

Off unless ``CLIENT_SETUP_DIR`` is set: the files are served without authentication, as the
original did, and they may hold tokens, so serving them is the operator's explicit choice.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import PathParameter
from litestar.response import File


def _refused(name: str) -> bool:
    return name in {"", ".", ".."} or any(part in name for part in ("..", "/", "\\", "\x00"))


def _locate(directory: str, name: str) -> Path | None:
    root = Path(directory).resolve()
    path = (root / name).resolve()
    # A symbolic link may not lead out of the directory.
    return path if path.parent == root and path.is_file() else None


@get("/client-setup/{filename:path}", include_in_schema=False)
async def client_setup_file(
    request: Request[Any, Any, Any], filename: Annotated[str, PathParameter(description="A file's name")]
) -> File:
    directory: str | None = request.app.state.get("client_setup_dir")
    name = filename.removeprefix("/")
    if _refused(name):
        raise ValidationException("A client-setup file name may not contain '..', '/' or '\\'")
    if not directory:
        raise NotFoundException("No client-setup files are served: CLIENT_SETUP_DIR is not set")
    path = await asyncio.to_thread(_locate, directory, name)
    if path is None:
        raise NotFoundException(f"No client-setup file named {name!r}")
    media_type = "application/json" if name.endswith(".json") else mimetypes.guess_type(name)[0]
    return File(
        path,
        filename=name,
        media_type=media_type or "application/octet-stream",
        headers={"cache-control": "no-store"},
    )
