"""The processes the benchmark starts: nginx, the asyncio SSE upstream and the proxy.

Each runs in its own session (so Ctrl-C reaches only the benchmark, which then stops them in
order) and is stopped with SIGTERM, then SIGKILL on its whole process group.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import payloads
import pg

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
PROXY_BIN = BENCH_DIR.parent / ".venv" / "bin" / "claude-nexus-proxy"


class StartupError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """The status of ``GET path`` on loopback, or None when nothing answers (no proxies consulted)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
    except OSError:
        return None
    else:
        return response.status
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 5.0) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def http_post(port: int, path: str, timeout: float = 5.0) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=b"")
        return conn.getresponse().read()
    finally:
        conn.close()


class Service:
    """One started process (and whatever it forks), with its log file."""

    def __init__(self, name: str, argv: list[str], *, port: int, log: Path, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 -- fixed argv built by the benchmark
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        """Wait until ``GET path`` answers 200; on failure (or Ctrl-C) the process is stopped."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise StartupError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                if http_get_status(self.port, path, timeout=0.5) == 200:
                    return
                time.sleep(0.1)
            raise StartupError(f"{self.name} not ready on port {self.port} after {timeout:.0f} s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} ignored SIGTERM for {timeout:.0f} s; killing it", file=sys.stderr)
        # The group outlives its leader when workers linger: take them down too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)


# --- nginx ----------------------------------------------------------------------------------


def _nginx_literal(body: bytes) -> str:
    text = body.decode()
    # Single-quoted in the config and used as a complex value: no quote, backslash or variable.
    assert not set("'\\$") & set(text), "the canned answer cannot be written as an nginx string"
    return "'" + text + "'"


def nginx_config(workdir: Path, port: int) -> str:
    rid = payloads.REQUEST_ID
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return f"""\
worker_processes 1;
daemon off;
master_process on;
pid {workdir}/nginx.pid;
error_log /dev/null;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_max_body_size 64m;
    client_body_buffer_size 1m;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    server {{
        listen {HOST}:{port} backlog=4096;
        # The body is invisible to nginx: streams are asked for in the query string.
        location /v1/messages {{
            if ($arg_bench_stream) {{ rewrite ^ /_bench/stream last; }}
            rewrite ^ /_bench/message last;
        }}
        location = /_bench/message {{
            internal;
            default_type application/json;
            add_header request-id {rid} always;
            return 200 {_nginx_literal(payloads.message_json())};
        }}
        location = /_bench/stream {{
            internal;
            default_type "text/event-stream; charset=utf-8";
            add_header request-id {rid} always;
            add_header cache-control no-cache always;
            return 200 {_nginx_literal(payloads.sse_body())};
        }}
        location = /health {{ return 200 ok; }}
        # A Slack webhook and a telemetry endpoint for the ``notify`` target.
        location /services/ {{ return 200 ok; }}
        location / {{ return 404; }}
    }}
}}
"""


def start_nginx(workdir: Path, *, name: str = "nginx", idle: bool = False) -> Service:
    """nginx with the canned answers; a ``name`` of its own gives it its own directory (so two
    can run), ``idle`` runs it only in the CPU's idle time (``SCHED_IDLE``)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise StartupError("nginx is not installed (make bench installs nginx-light)")
    home = workdir if name == "nginx" else workdir / name
    home.mkdir(exist_ok=True)
    port = free_port()
    conf = home / "nginx.conf"
    conf.write_text(nginx_config(home, port))
    argv = [nginx, "-p", str(home), "-c", str(conf)]
    if idle:
        argv = [shutil.which("chrt") or "/usr/bin/chrt", "--idle", "0", *argv]
    service = Service(name, argv, port=port, log=home / "nginx.log", cwd=home, env=dict(os.environ))
    service.wait_ready("/health")
    return service


# --- the asyncio SSE upstream ---------------------------------------------------------------


def start_sse_upstream(workdir: Path, *, delay_ms: float, hold_timeout: float) -> Service:
    port = free_port()
    argv = [
        sys.executable, str(BENCH_DIR / "sse_upstream.py"), "--port", str(port),
        "--delay-ms", str(delay_ms), "--hold-timeout", str(hold_timeout),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(BENCH_DIR))
    service = Service("sse-upstream", argv, port=port, log=workdir / "sse-upstream.log", cwd=BENCH_DIR, env=env)
    service.wait_ready("/bench/health")
    return service


# --- the proxy ------------------------------------------------------------------------------

# Settings the benchmark decides; anything else in the environment passes through.
_CONTROLLED = (
    "PORT", "HOST", "CLAUDE_API_BASE_URL", "CLAUDE_API_KEY", "LOG_LEVEL", "WORKERS",
    "STORAGE_ENABLED", "DATABASE_URL", "NEXUS_DATA_DIR",
)  # fmt: skip


class ProxyService(Service):
    """A proxy; with recording on, stopping it also makes sure its embedded PostgreSQL is gone."""

    def __init__(self, *args: Any, data_dir: Path, recording: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_dir = data_dir
        self.recording = recording

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def database_url(self) -> str:
        """The URL of the embedded server (its Unix socket lives in ``pgdata``)."""
        running = pg.postmaster(self.pgdata)
        if running is None:
            raise StartupError(f"{self.name} has no running PostgreSQL in {self.pgdata}:\n{self.log_tail()}")
        return running.url

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)  # the proxy stops its server on the way out...
        if self.recording and (note := pg.stop_postgres(self.pgdata)):
            print(f"  {note}: the proxy left it running", file=sys.stderr)  # ...or this does


def start_proxy(
    workdir: Path,
    upstream_port: int,
    *,
    workers: int,
    name: str | None = None,
    recording: bool = True,
    extra_env: dict[str, str] | None = None,
) -> ProxyService:
    """A proxy in its own home directory (its cwd). With ``recording`` it stores every exchange
    in the embedded PostgreSQL it starts under ``<home>/.nexus``, as it does by default."""
    if not PROXY_BIN.exists():
        raise StartupError(f"{PROXY_BIN} is missing: run `make install`")
    home = workdir / f"proxy-{name or upstream_port}"
    home.mkdir(exist_ok=True)  # its cwd: an empty ./.env-less directory with no ./credentials
    data_dir = home / ".nexus"
    env = {name: value for name, value in os.environ.items() if name not in _CONTROLLED}
    env.update(
        CLAUDE_API_BASE_URL=f"http://{HOST}:{upstream_port}",
        CLAUDE_API_KEY="sk-ant-api03-bench",
        LOG_LEVEL="WARNING",
        STORAGE_ENABLED="true" if recording else "false",
        NEXUS_DATA_DIR=str(data_dir),
        **(extra_env or {}),
    )
    port = free_port()
    argv = [str(PROXY_BIN), "-H", HOST, "-p", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    service = ProxyService(
        "claude-nexus-proxy" + ("" if recording else " (recording off)"), argv,
        port=port, log=home / "proxy.log", cwd=home, env=env, data_dir=data_dir, recording=recording,
    )  # fmt: skip
    service.wait_ready("/api/hello", timeout=90.0)  # the first start runs initdb
    return service


# --- memory ---------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (VmRSS), in MiB."""
    tree = _children()
    total_kb = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024


def tree_cpu_s(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its descendants, live or reaped."""
    tree = _children()
    ticks = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")
