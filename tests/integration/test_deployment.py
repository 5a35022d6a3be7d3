"""The deployment files: the images' command and environment run for real, compose and Kubernetes checked.

There is no Docker engine here, so the images are reproduced as closely as a process can be: the
build stage's own RUN commands (uv export from the lock, uv build --wheel, uv pip install) make a
fresh virtualenv, and the image's ENTRYPOINT/CMD runs from it with the image's ENV (read from the
Dockerfile, container paths mapped to temporary folders) and compose's environment for the
service, in front of a fake Anthropic and a real PostgreSQL. The HEALTHCHECK command is run as
Docker would run it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import opentelemetry.sdk.environment_variables as otel_sdk_variables
import pytest
import yaml

from nexus.entrypoints.settings import Settings
from tests.support.dashboard import sign_in
from tests.support.database import wait_for_rows
from tests.support.dockerfile import Dockerfile, DockerIgnore, Image, expand
from tests.support.fake_anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.otlp_receiver import OtlpReceiver, attributes
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = Dockerfile(ROOT / "Dockerfile")
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
KUBERNETES = ROOT / "deploy" / "kubernetes"
DASHBOARD_KEY = "dashboard-key-for-the-deployment-test"
CLIENT_KEY = "cnp_live_deployment_test"
SETTINGS = {name.upper() for name in Settings.__struct_fields__}
# Build-stage variables that change only how fast files are placed (copies instead of hard
# links, bytecode compiled ahead): Docker needs them, the test would spend 25 s on them.
SPEED_ONLY = {"UV_LINK_MODE", "UV_COMPILE_BYTECODE"}
# Variables of the image that are not the app's settings: Python's and the virtualenv's.
NOT_SETTINGS = {"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


def _uv() -> str:
    """The Makefile's pinned uv (make installs it before any test runs)."""
    pinned = ROOT / ".tools" / "bin" / "uv"
    found = str(pinned) if pinned.is_file() else shutil.which("uv")
    assert found, "uv is needed: run the tests through make, which installs it in .tools"
    return found


@dataclass(frozen=True)
class Installed:
    venv: Path
    root: Path  # where the container's folders are mapped


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The image's virtualenv, made by the build stage's own commands (paths mapped to a temporary folder)."""
    tmp = tmp_path_factory.mktemp("image")
    venv_in_image = dict(DOCKERFILE.image("proxy").env)["VIRTUAL_ENV"]
    # The assets stage's one command, in the working copy (a no-op when make install fetched them).
    assert DOCKERFILE.stage("assets").runs[-1] == "python scripts/fetch_dashboard_assets.py"
    subprocess.run([sys.executable, "scripts/fetch_dashboard_assets.py"], cwd=ROOT, check=True, capture_output=True)
    build = DOCKERFILE.stage("build")
    mapped = {"/usr/local/bin/python3.11": sys.executable, venv_in_image: str(tmp / "venv"), "/tmp/": f"{tmp}/"}
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environment |= {key: value for key, value in build.env if key not in SPEED_ONLY}
    environment["PATH"] = f"{Path(_uv()).parent}{os.pathsep}{environment['PATH']}"
    for run in build.runs:
        if "uv==" in run:
            continue  # installs uv itself: the test has the Makefile's, the same version (checked below)
        # One pass, so a mapped path is never mapped again.
        command = re.sub("|".join(map(re.escape, mapped)), lambda match: mapped[match.group(0)], run)
        for word in shlex.split(command):
            assert not word.startswith("/") or word.startswith((str(tmp), sys.executable)), f"unmapped path {word}"
        done = subprocess.run(
            ["bash", "-ec", command],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return Installed(venv=tmp / "venv", root=tmp)


def _interpolate(value: str, given: dict[str, str]) -> str:
    """compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with ``given`` as the shell's variables."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2) or "", match.group(3) or ""
        if given.get(name):
            return given[name]
        assert operator != ":?", f"compose needs {name}: {word}"
        return word if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _compose_environment(service: str, given: dict[str, str]) -> dict[str, str]:
    environment = COMPOSE["services"][service].get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping"
    return {key: _interpolate(str(value), given) for key, value in environment.items()}


class Container:
    """An image's command run as a process, with the image's ENV, its folders mapped under ``root``."""

    def __init__(self, installed: Installed, target: str, **overrides: str) -> None:
        self.image: Image = DOCKERFILE.image(target)
        root = installed.root / target
        root.mkdir()
        image_env = dict(self.image.env)
        self._folders = {image_env["VIRTUAL_ENV"]: str(installed.venv)}
        for volume in self.image.volumes:
            self._folders[volume] = str(root / volume.strip("/"))
            Path(self._folders[volume]).mkdir()
        assert self.image.workdir
        self.workdir = root / self.image.workdir.strip("/")
        self.workdir.mkdir()
        # What the base image sets (PATH, LANG), with this machine's PATH behind the virtualenv's.
        environment = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(root)}
        for key, value in self.image.env:
            environment[key] = self._map(expand(value, environment))
        self.environment = environment | overrides
        self.port = int(self.environment["PORT"])
        self.log = root / "output.log"
        self._process: subprocess.Popen[bytes] | None = None

    def folder(self, inside: str) -> Path:
        return Path(self._folders[inside])

    def _map(self, value: str) -> str:
        for inside, outside in sorted(self._folders.items(), key=lambda item: -len(item[0])):
            value = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|:|$)", outside, value)
        return value

    def _resolved(self, command: list[str]) -> list[str]:
        executable = shutil.which(command[0], path=self.environment["PATH"])
        assert executable, f"{command[0]} is not on the image's PATH"
        return [executable, *command[1:]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Container:
        command = self._resolved(self.image.command)
        assert command[0].startswith(str(self.folder(dict(self.image.env)["VIRTUAL_ENV"]))), "run from the virtualenv"
        with self.log.open("wb") as output:
            self._process = subprocess.Popen(
                command, cwd=self.workdir, env=self.environment, stdout=output, stderr=subprocess.STDOUT
            )
        return self

    def wait_live(self, timeout: float = 60) -> Container:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            assert self._process.poll() is None, f"exited early:\n{self.output()}"
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not live within {timeout} s:\n{self.output()}")

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """The HEALTHCHECK command, in the container's environment, within its own timeout."""
        assert self.image.healthcheck
        options, command = self.image.healthcheck
        timeout = float(options["timeout"].removesuffix("s"))
        return subprocess.run(
            self._resolved(command),
            cwd=self.workdir,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> int | None:
        """``docker stop``: SIGTERM, then SIGKILL after compose's stop_grace_period."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def test_the_images_serve_record_and_pass_their_healthcheck(
    installed: Installed, fake: FakeAnthropic, database_url: str, otlp: OtlpReceiver
) -> None:
    given = {"DASHBOARD_API_KEY": DASHBOARD_KEY}
    # compose's settings, with the services it names (postgres, the collector) replaced by real
    # ones on loopback, and the published port by a free one.
    proxy = Container(
        installed,
        "proxy",
        **_compose_environment("proxy", given)
        | {
            "DATABASE_URL": database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            "CLAUDE_API_BASE_URL": fake.url,
            "PORT": str(free_port()),
        },
    )
    dashboard = Container(
        installed,
        "dashboard",
        **_compose_environment("dashboard", given) | {"DATABASE_URL": database_url, "PORT": str(free_port())},
    )
    # The credentials volume as compose mounts it: the examples beside one real file.
    credentials = proxy.folder("/credentials")
    for example in (ROOT / "credentials").glob("*.example"):
        shutil.copy(example, credentials / example.name)
    # An IP address is a domain with its port (what tells local set-ups apart).
    (credentials / f"127.0.0.1:{proxy.port}.credentials.json").write_text(
        msgspec.json.encode({"type": "api_key", "api_key": DEFAULT_API_KEY, "client_api_key": CLIENT_KEY}).decode()
    )
    try:
        # Both at once (two cores): the dashboard reads nothing before its first page, by when
        # the proxy has migrated the schema (compose orders them; here it would only cost time).
        proxy.start()
        dashboard.start()
        proxy.wait_live()
        client = anthropic.Anthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        message = client.messages.create(
            model="claude-sonnet-5", max_tokens=32, messages=[{"role": "user", "content": "hello from a container"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text.startswith("You said: hello from a container")
        assert fake.last_request.header("x-api-key") == DEFAULT_API_KEY, "the credential file in /credentials"
        assert httpx.get(f"{proxy.url}/health/ready").status_code == 200
        rows = wait_for_rows(database_url, 1)
        assert len(rows) == 1, "recorded: the wheel's migrations ran"
        assert proxy.healthcheck().returncode == 0

        dashboard.wait_live()
        browser = sign_in(dashboard.url, DASHBOARD_KEY)
        listed = browser.get("/dashboard/requests")
        assert listed.status_code == 200
        assert 'data-total="1"' in listed.text, "the dashboard reads what the proxy stored"
        assert dashboard.healthcheck().returncode == 0
    finally:
        proxy_status = proxy.stop()
        dashboard_status = dashboard.stop()
    assert proxy_status == 0, proxy.output()
    assert dashboard_status == 0, dashboard.output()
    checked = proxy.healthcheck()
    assert checked.returncode != 0, "the healthcheck fails once the server is gone"
    # Spans were flushed at shutdown, with compose's service name and resource attributes.
    resources = [attributes(item.resource) for request in otlp.traces for item in request.resource_spans]
    assert resources, "spans reached the OTLP endpoint"
    assert resources[0]["service.name"] == "claude-nexus"
    assert resources[0]["deployment.environment.name"] == "compose"
    # Nothing was written outside the volumes (the working directory is read-only in Kubernetes).
    assert not any(proxy.workdir.iterdir())
    assert not any(dashboard.workdir.iterdir())


def test_the_dockerfile_pins_its_bases_and_runs_unprivileged() -> None:
    for base in DOCKERFILE.external_bases():
        assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", base), f"{base} is not pinned by tag and digest"
    assert DOCKERFILE.stages[-1].name == "proxy", "docker build . gives the proxy"
    for target, role, port in (("proxy", "proxy", "3000"), ("dashboard", "dashboard", "3001")):
        image = DOCKERFILE.image(target)
        environment = dict(image.env)
        assert (environment["NEXUS_ROLE"], environment["PORT"], environment["HOST"]) == (role, port, "0.0.0.0")
        assert port in image.exposed
        assert image.user
        assert image.user.split(":")[0] not in ("0", "root"), "runs as a non-root user"
        assert sorted(image.volumes) == sorted([environment["NEXUS_DATA_DIR"], environment["CREDENTIALS_DIR"]])
        assert image.command == ["claude-nexus-proxy"]
        assert image.healthcheck
        assert "/health/live" in " ".join(image.healthcheck[1])
        unknown = {key for key, _ in image.env} - SETTINGS - NOT_SETTINGS
        assert unknown == set(), "every ENV is a setting the app reads"
        # Everything the app writes lands in a volume.
        for name in ("MCP_PROMPTS_DIR", "TEST_SAMPLES_DIR"):
            assert environment[name].startswith(environment["NEXUS_DATA_DIR"] + "/")


def test_the_runtime_stages_have_no_build_tools() -> None:
    for name in ("runtime", "proxy", "dashboard"):
        for run in DOCKERFILE.stage(name).runs:
            assert not re.search(r"\b(pip|uv|apt-get|apt|gcc|npm)\b", run), f"{name}: {run}"
    (source,) = {copy[0] for copy in DOCKERFILE.stage("runtime").copies}
    assert source == "build", "the runtime stage takes only the virtualenv from the build stage"


def test_the_build_stage_uses_the_lock_and_the_makefiles_uv() -> None:
    build = DOCKERFILE.stage("build")
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert match
    assert build.args["UV_VERSION"] == match.group(1)
    commands = " ".join(build.runs)
    for needed in ("uv export --frozen --no-dev", "uv build --wheel", "--no-deps"):
        assert needed in commands


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secrets() -> None:
    ignore = DockerIgnore(ROOT / ".dockerignore")
    stage_names = set(DOCKERFILE.stage_names)
    for stage in DOCKERFILE.stages:
        for source, paths, _ in stage.copies:
            if source in stage_names:
                continue
            for path in paths:
                assert (ROOT / path).exists(), f"COPY {path}: not in the working copy"
                assert not ignore.excluded(path), f"COPY {path}: left out by .dockerignore"
    for secret in (
        ".venv/bin/python",
        ".tools/bin/uv",
        ".git/config",
        ".nexus/postgres/PG_VERSION",
        ".env",
        "credentials/team.example.com.credentials.json",
        "test-artifacts/screenshot.png",
        "bench/results/run.json",
        ".pytest_cache/v/cache",
        "src/nexus/__pycache__/app.cpython-311.pyc",
        "src/nexus/entrypoints/dashboard/static/vendor/htmx.min.js",
    ):
        assert ignore.excluded(secret), f"{secret} would be sent to the Docker daemon"


def _healthchecked(service: dict[str, Any]) -> bool:
    """A compose healthcheck, or an image built from our Dockerfile, which has one."""
    if "healthcheck" in service:
        return True
    build = service.get("build")
    return isinstance(build, dict) and DOCKERFILE.image(build["target"]).healthcheck is not None


def test_compose_names_only_what_exists() -> None:
    services: dict[str, Any] = COMPOSE["services"]
    assert {"postgres", "proxy", "dashboard", "otel-collector"} <= set(services)
    declared_volumes = set(COMPOSE.get("volumes") or {})
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
            assert build["target"] in DOCKERFILE.stage_names, f"{name}: no stage {build['target']}"
        else:
            image = service["image"]
            assert re.search(r":\d+[\w.-]*(@sha256:[0-9a-f]{64})?$", image), f"{name}: {image} is not pinned"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on {dependency}, which is not a service"
            if condition["condition"] == "service_healthy":
                assert _healthchecked(services[dependency]), f"{dependency} has no healthcheck to wait for"
    assert services["postgres"]["image"].startswith("postgres:18"), "the embedded server's major version"
    assert services["proxy"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dashboard"]["depends_on"]["proxy"]["condition"] == "service_healthy"


def test_every_variable_compose_sets_for_the_app_is_a_setting() -> None:
    given = {"DASHBOARD_API_KEY": DASHBOARD_KEY}
    proxy = _compose_environment("proxy", given)
    dashboard = _compose_environment("dashboard", given)
    for name in {*proxy, *dashboard}:
        assert name in SETTINGS or (name.startswith("OTEL_") and hasattr(otel_sdk_variables, name)), name
    assert proxy["DATABASE_URL"] == dashboard["DATABASE_URL"], "the dashboard reads the proxy's database"
    assert proxy["DATABASE_URL"].startswith("postgresql://nexus:nexus@postgres:5432/")
    postgres = _compose_environment("postgres", given)
    assert proxy["DATABASE_URL"] == (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    with pytest.raises(AssertionError, match="compose needs DASHBOARD_API_KEY"):
        _compose_environment("proxy", {})


def test_the_collector_receives_what_the_proxy_sends() -> None:
    collector = COMPOSE["services"]["otel-collector"]
    (mount,) = collector["volumes"]
    source, target, _ = mount.split(":")
    assert f"--config={target}" in collector["command"]
    config = yaml.safe_load((ROOT / source).read_text())
    http = config["receivers"]["otlp"]["protocols"]["http"]
    endpoint = _compose_environment("proxy", {"DASHBOARD_API_KEY": "x"})["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == f"http://otel-collector:{http['endpoint'].rsplit(':', 1)[1]}"
    assert http["endpoint"].startswith("0.0.0.0:"), "reachable from the proxy's container"
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for pipeline in pipelines.values():
        assert set(pipeline["receivers"]) <= set(config["receivers"])
        assert set(pipeline.get("processors", [])) <= set(config.get("processors") or {})
        assert set(pipeline["exporters"]) <= set(config["exporters"])
        assert "debug" in pipeline["exporters"]


def _kubernetes_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def test_the_kubernetes_manifests_validate_and_probe_real_routes() -> None:
    validated = subprocess.run(
        [
            str(Path(sys.executable).parent / "kubernetes-validate"),
            "--strict",
            "--quiet",
            *map(str, KUBERNETES.glob("*.yaml")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    documents = _kubernetes_documents()
    (secret,) = [document for document in documents if document["kind"] == "Secret"]
    assert set(secret["stringData"]) <= SETTINGS
    routes = {"proxy": {"/health/live", "/health/ready"}, "dashboard": {"/health/live"}}
    deployments = {document["metadata"]["name"]: document for document in documents if document["kind"] == "Deployment"}
    for role, paths in routes.items():
        pod = deployments[f"claude-nexus-{role}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        image = DOCKERFILE.image(role)
        assert pod["securityContext"]["runAsUser"] == int((image.user or "").split(":")[0])
        assert container["ports"][0]["containerPort"] == int(dict(image.env)["PORT"])
        probed = {container[probe]["httpGet"]["path"] for probe in container if probe.endswith("Probe")}
        assert probed <= paths, role
        assert "/health/live" in probed, role
        for variable in container.get("env", []):
            assert variable["name"] in SETTINGS
        mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert set(image.volumes) <= mounted, "every volume of the image is backed"
        grace = pod["terminationGracePeriodSeconds"]
        assert grace > Settings().shutdown_drain_seconds
