"""Build llama.cpp's `llama-server` once, from the sources vendored in llama-cpp-python's sdist.

Why: the real-server tests (and the bench) run the exporter against a real llama-server. No
prebuilt binary is downloaded; the sdist on PyPI carries llama.cpp's tree (`vendor/llama.cpp`),
which is built with cmake (CPU only, no curl, no native tuning, only the `llama-server`
target) and cached OUTSIDE the repository, at
`${LLM_HEARTBEAT_CACHE:-~/.cache/llm-heartbeat}/llama-server-<version>/llama-server`.
The first build takes several minutes on 2 cores; later calls return the cached path at once.

API: `llama_server_binary() -> Path` (builds when missing). From the shell:
`python -m tests.realserver.build_llama_server` prints the path (building first if needed).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import IO

VERSION = "0.3.36"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)


def cache_root() -> Path:
    """Where built binaries live between runs (never inside the repository)."""
    env = os.environ.get("LLM_HEARTBEAT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "llm-heartbeat"


def binary_path(version: str = VERSION) -> Path:
    """The cached binary's path, whether or not it is built yet."""
    return cache_root() / f"llama-server-{version}" / "llama-server"


def llama_server_binary(version: str = VERSION, jobs: int = 2) -> Path:
    """The path of a working `llama-server`, built first when the cache has none."""
    target = binary_path(version)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build
        if not target.is_file():
            _build(version, target, jobs)
    return target


def _build(version: str, target: Path, jobs: int) -> None:
    log_path = target.parent / "build.log"
    print(
        f"building llama-server {version} from llama-cpp-python's sdist "
        f"(several minutes on 2 cores, once; log: {log_path})",
        file=sys.stderr,
    )
    with (
        tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as tmp,
        open(log_path, "wb") as log,
    ):
        _steps(version, Path(tmp), target, jobs, log)


def _steps(version: str, work: Path, target: Path, jobs: int, log: IO[bytes]) -> None:
    def run(cmd: list[str]) -> None:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)

    run(
        [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}",
         "--no-deps", "--no-binary", ":all:", "-d", str(work), "-q",
         "--disable-pip-version-check"],
    )  # fmt: skip
    sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(work, members=members, filter="data")
    src = work / prefix
    build = work / "build"
    run(["cmake", "-S", str(src), "-B", str(build), *CMAKE_FLAGS])
    run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)])
    built = build / "bin" / "llama-server"
    tmp_target = target.with_suffix(".part")
    shutil.copy2(built, tmp_target)
    tmp_target.replace(target)  # the cached path appears only once complete


if __name__ == "__main__":
    print(llama_server_binary())
