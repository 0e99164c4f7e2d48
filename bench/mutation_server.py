"""A warm pytest for mutation runs: most of a test run's CPU is starting Python and importing
pytest, its plugins and the libraries (aiohttp, pydantic ...), the same for every mutant. The
server imports those once and forks a child per run; the child imports the project (mutated
on disk) and runs pytest. `client` is the test command cosmic-ray runs: it sends its argv
and prints what the run printed, exiting with its code.

python -m bench.mutation_server serve SOCKET WORKDIR TIMEOUT   (bench/mutate.py starts it)
python -m bench.mutation_server client SOCKET PYTEST-ARGS...
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time

# imported once here, not per mutant; never anything of the project (it must be read fresh)
WARM = (
    "pytest",
    "_pytest.python",
    "hypothesis",
    "pytest_asyncio",
    "respx",
    "anyio",
    "aiohttp",
    "aiohttp.web",
    "httpx",
    "pydantic",
    "pydantic_settings",
    "starlette.applications",
    "uvicorn",
    "prometheus_client",
    "yaml",
    "httptools",
    "uvloop",
)


def _run_child(workdir: str, args: list[str], out_path: str) -> None:
    """In the forked child: the project from `workdir`, pytest's exit code as ours."""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(workdir)
    sys.path.insert(0, workdir)
    sys.dont_write_bytecode = True
    import pytest

    code = int(pytest.main(args))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _one_run(workdir: str, args: list[str], timeout: float) -> tuple[int, str]:
    with tempfile.NamedTemporaryFile(prefix="mutrun-", delete=False) as f:
        out_path = f.name
    try:
        pid = os.fork()
        if pid == 0:
            try:
                _run_child(workdir, args, out_path)
            finally:
                os._exit(3)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return 124, "timeout: the tests ran past the limit (a hang counts as killed)"
            time.sleep(0.02)
        with open(out_path, errors="replace") as f:
            return code, f.read()[-200_000:]
    finally:
        os.unlink(out_path)


def serve(path: str, workdir: str, timeout: float) -> None:
    for name in WARM:
        with contextlib.suppress(ImportError):
            __import__(name)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen(4)
        while True:
            conn, _ = srv.accept()
            with conn:
                request = json.loads(_read_all(conn))
                if request.get("stop"):
                    return
                code, output = _one_run(workdir, request["args"], timeout)
                conn.sendall(json.dumps({"code": code, "output": output}).encode())


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def request(path: str, payload: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(path)
        c.sendall(json.dumps(payload).encode())
        c.shutdown(socket.SHUT_WR)
        answer = _read_all(c)
    return json.loads(answer) if answer else {}


def client(path: str, args: list[str]) -> int:
    answer = request(path, {"args": args})
    sys.stdout.write(str(answer["output"]))
    return int(str(answer["code"]))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(client(sys.argv[2], sys.argv[3:]))
