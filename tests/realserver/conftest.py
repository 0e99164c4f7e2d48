"""A real llama-server (built once from llama-cpp-python's sdist, build_llama_server.py) on a
tiny random-weight model the tests write (tiny_model.py). Every test here is marked
`realserver`: `pytest -m realserver` runs them alone, `-m "not realserver"` skips them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.realserver.build_llama_server import llama_server_binary
from tests.realserver.tiny_model import write_tiny_llama

ALIAS = "tiny"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.realserver)


@pytest.fixture(scope="session")
def llama_server_bin() -> Path:
    return llama_server_binary()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny.gguf")


class LlamaServer:
    """One llama-server process on a free loopback port; stopped (and reaped) at the end."""

    def __init__(self, binary: Path, model: Path, log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--alias", ALIAS, "-t", "1", *args]
        self.proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"llama-server not ready: {self.log.read_text()[-2000:]}")

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def llama_server(
    llama_server_bin: Path, tiny_model: Path, tmp_path: Path
) -> Iterator[Callable[..., LlamaServer]]:
    started: list[LlamaServer] = []

    def start(*args: str) -> LlamaServer:
        server = LlamaServer(llama_server_bin, tiny_model, tmp_path / "llama-server.log", *args)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()
