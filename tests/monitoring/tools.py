"""Find promtool/amtool: missing is a failure under CI (CI=true), a reasoned skip elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["require_tool", "run"]

_DEBIAN_PACKAGE = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def require_tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
    )
    if path:
        return path
    reason = f"{name} not found (Debian package {_DEBIAN_PACKAGE.get(name, name)}; `make deb-test`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def run(
    argv: list[str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
