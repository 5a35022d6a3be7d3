#!/usr/bin/env python3
"""Fetch the dashboard's JavaScript assets from the npm registry into the package.

The dashboard ships every asset inside the Python package (no CDN: it must work offline and
behind a strict Content-Security-Policy). The files come from the npm registry, pinned here
to exact versions and verified against the sha512 integrity the registry publishes, and land in
src/nexus/entrypoints/dashboard/static/vendor/ (gitignored; hatch ships them through the
`artifacts` setting in pyproject.toml). Each package's licence is kept next to its files.

`make install` runs this once: it writes vendor/manifest.json last, and that file is the stamp.
Standard library only, so it runs with the machine's Python before the virtualenv exists.

Usage: fetch_dashboard_assets.py [--force]
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "nexus" / "entrypoints" / "dashboard" / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity for the tarball (`npm view NAME@VERSION dist.integrity`)
    files: dict[str, str]  # path inside the tarball (under package/) -> file name in vendor/


# The one place the versions live. To upgrade: change version and integrity, then `make install`.
PACKAGES = (
    Package(
        name="htmx.org",
        version="2.0.11",
        integrity="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        files={"dist/htmx.min.js": "htmx.min.js", "LICENSE": "htmx.org.LICENSE"},
    ),
    Package(
        name="htmx-ext-sse",
        version="2.2.4",
        integrity="sha512-LJmxVhykyflBWgh5PvbRidcyuqMHlgfajmmzumvKctv9puvsufeH6OaejSMZTNTnEI8O2wXXn4ZZtBdpEMqmEQ==",
        files={"dist/sse.min.js": "sse.min.js", "LICENSE": "htmx-ext-sse.LICENSE"},
    ),
    Package(
        name="chart.js",
        version="4.5.1",
        integrity="sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw==",
        # The UMD bundle inlines its one dependency (@kurkle/color, MIT) and sets window.Chart.
        files={"dist/chart.umd.min.js": "chart.umd.min.js", "LICENSE.md": "chart.js.LICENSE.md"},
    ),
)


def _sri(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def _expected_manifest() -> dict[str, object]:
    return {pkg.name: {"version": pkg.version, "integrity": pkg.integrity} for pkg in PACKAGES}


def _up_to_date() -> bool:
    """The manifest names the pinned packages and every file it lists is there, byte for byte."""
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("packages") != _expected_manifest():
        return False
    files = manifest.get("files", {})
    for name, entry in files.items():
        path = VENDOR / name
        if not path.is_file() or _sri("sha384", path.read_bytes()) != entry.get("sri"):
            return False
    return set(files) == {name for pkg in PACKAGES for name in pkg.files.values()}


def _npm_pack(pkg: Package, into: Path) -> Path:
    """Download NAME@VERSION's tarball through npm and check it against the pinned integrity."""
    spec = f"{pkg.name}@{pkg.version}"
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        ["npm", "pack", spec, "--json", "--pack-destination", str(into), "--loglevel=error"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    (report,) = json.loads(result.stdout)
    if report["integrity"] != pkg.integrity:
        raise SystemExit(f"{spec}: npm reports integrity {report['integrity']}, pinned {pkg.integrity}")
    filename: str = report["filename"]
    tarball = into / filename
    # Check the bytes ourselves too, not only npm's word for them.
    actual = _sri("sha512", tarball.read_bytes())
    if actual != pkg.integrity:
        raise SystemExit(f"{spec}: tarball integrity {actual}, pinned {pkg.integrity}")
    return tarball


def _extract(pkg: Package, tarball: Path, into: Path) -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member_path, target in pkg.files.items():
            member = archive.getmember(f"package/{member_path}")
            stream = archive.extractfile(member) if member.isfile() else None
            if stream is None:
                raise SystemExit(f"{pkg.name}@{pkg.version}: package/{member_path} is not a regular file")
            data = stream.read()
            (into / target).write_bytes(data)
            entries[target] = {"package": pkg.name, "version": pkg.version, "sri": _sri("sha384", data)}
    return entries


def fetch() -> None:
    VENDOR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dashboard-assets-") as tmp:
        downloads = Path(tmp) / "downloads"
        staging = Path(tmp) / "vendor"
        downloads.mkdir()
        staging.mkdir()
        files: dict[str, dict[str, str]] = {}
        for pkg in PACKAGES:
            files |= _extract(pkg, _npm_pack(pkg, downloads), staging)
            print(f"  {pkg.name}@{pkg.version}: {', '.join(pkg.files.values())}")
        manifest = {
            "note": "Written by scripts/fetch_dashboard_assets.py; sri values fit <script integrity=...>.",
            "packages": _expected_manifest(),
            "files": files,
        }
        (staging / MANIFEST.name).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        # Replace vendor/ whole, so a file a previous version shipped does not linger.
        shutil.rmtree(VENDOR, ignore_errors=True)
        shutil.copytree(staging, VENDOR)


def main(argv: list[str]) -> int:
    if "--force" not in argv and _up_to_date():
        MANIFEST.touch()  # so make sees the stamp as newer than this script
        print(f"dashboard assets up to date in {VENDOR.relative_to(ROOT)}")
        return 0
    print(f"fetching dashboard assets from the npm registry into {VENDOR.relative_to(ROOT)}")
    fetch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
