"""The wheel a user installs with pip or pipx: built here from the tree, its contents and its
metadata checked, then installed into an empty directory and run from there."""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            out,
            ROOT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The metadata is current: no setuptools deprecation warning (issue 17: ~45 lines of them).
    assert "deprecat" not in (proc.stderr + proc.stdout).lower(), proc.stderr
    (path,) = out.glob("llm_heartbeat-*.whl")
    return path


def test_wheel_holds_the_package_its_assets_and_the_licence_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "exporter/cli/__init__.py",
        "exporter/py.typed",
        "exporter/server/web/static/status.js",
        "exporter/server/web/static/status.css",
        "exporter/server/web/static/favicon.svg",
        "exporter/simulate/app.py",
        "exporter/recovery/actions/systemd.py",
    ):
        assert needed in names, needed
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"exporter"}, tops  # no tests/, bench/, grafana/ in site-packages
    (info,) = dist_info
    assert f"{info}/licenses/LICENSE" in names
    meta = email.parser.Parser().parsestr(zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Name"] == "llm-heartbeat"
    entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "llm-heartbeat = exporter.cli:main" in entry


def test_installed_wheel_runs_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    """Installed apart from the source tree, the command starts and finds its page assets."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
        check=True,
        timeout=300,
    )
    # The dependencies come from this interpreter's site-packages; the exporter from the wheel.
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import exporter, exporter.server.web.assets as a; print(exporter.__file__); "
        "print(sorted(a.load_assets()))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(target)), proc.stdout
    assert "status.js" in proc.stdout
    script = target / "bin" / "llm-heartbeat"
    assert script.is_file()
    proc = subprocess.run(
        [sys.executable, script, "--version"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("llm-heartbeat "), proc.stderr


def test_the_image_build_gets_every_file_the_metadata_names() -> None:
    """The Dockerfile builds the same wheel: a `license-files` or `readme` it does not copy
    (or .dockerignore drops) breaks the image build."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = [project["readme"], *project["license-files"]]
    copied = [
        word
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for word in line.split()[1:-1]
    ]
    kept = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert len(needed) >= 2
    for name in needed:
        assert (ROOT / name).is_file(), name
        assert name in copied, f"Dockerfile does not COPY {name}"
        assert f"!{name}" in kept, f".dockerignore drops {name}"
