"""The real proxy app under uvicorn, on a loopback port, in a background thread."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from types import TracebackType

import uvicorn

from nexus.entrypoints.serve import server_config
from nexus.entrypoints.settings import Settings, load_settings


class RunningProxy:
    """``with RunningProxy(CLAUDE_API_BASE_URL=..., ...) as proxy:`` then talk to ``proxy.url``."""

    def __init__(self, *, port: int = 0, **environment: str) -> None:
        if "DATABASE_URL" not in environment:
            environment.setdefault("STORAGE_ENABLED", "false")  # the tests of storage give a database
        # Nothing a test starts writes into the working copy (the dashboard keeps its session
        # secret in the data directory).
        environment.setdefault("NEXUS_DATA_DIR", tempfile.mkdtemp(prefix="nexus-test-"))
        self.settings: Settings = load_settings(environment)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port  # 0: any free one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(server_config(self.settings, host="127.0.0.1", port=self.port))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
