"""The bench's targets: nginx answering fixed vLLM-shaped bodies on N loopback ports, and a
tiny asyncio server with a known injected delay (nginx cannot sleep) for timing fidelity."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import fixtures
from bench.procstat import children

__all__ = ["Nginx", "free_port_block", "nginx_conf", "wait_port"]


def _quote(body: bytes) -> str:
    """An nginx single-quoted string (newlines may stand in it literally)."""
    text = body.decode()
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def nginx_conf(tmp: Path, ports: list[int]) -> str:
    """One worker, every port in one server block, fixed answers, no logs."""
    listens = "\n".join(f"    listen 127.0.0.1:{p} backlog=4096;" for p in ports)
    temp = "\n".join(
        f"  {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 30000;
events {{ worker_connections 20000; }}
http {{
  access_log off;
{temp}
  keepalive_timeout 75s;
  keepalive_requests 100000;
  server {{
{listens}
    location = {fixtures.HEALTH_PATH} {{ default_type application/json; return 200; }}
    location = {fixtures.MODELS_PATH} {{
      default_type application/json;
      return 200 {_quote(fixtures.MODELS_BODY)};
    }}
    location = {fixtures.CHAT_PATH} {{
      default_type text/event-stream;
      return 200 {_quote(fixtures.CHAT_SSE)};
    }}
  }}
}}
"""


def free_port_block(count: int, start: int = 10000, stop: int = 20000) -> int:
    """First port of `count` consecutive ports free on 127.0.0.1, below the ephemeral range
    and below 20000-32000, where the tests' free_port picks (a bench run beside tests would
    otherwise take their ports and find no block of its own)."""
    base = start
    while base + count <= stop:
        for offset in range(count):
            with socket.socket() as s:
                # as nginx binds: a port in TIME_WAIT from the previous run is free to it
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", base + offset))
                except OSError:
                    base = base + offset + 1
                    break
        else:
            return base
    raise RuntimeError(f"no block of {count} free ports in {start}-{stop}")


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Nginx:
    """Debian's nginx as an unprivileged foreground process with a generated config."""

    def __init__(self, tmp: Path, ports: list[int]) -> None:
        self.tmp = tmp
        self.ports = ports
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.tmp / "nginx.conf"
        conf.write_text(nginx_conf(self.tmp, self.ports))
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.tmp), "-e", str(self.tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(self.ports[-1])
        except TimeoutError:
            self.stop()
            log = (self.tmp / "error.log").read_text() if (self.tmp / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start: {log[-500:]}") from None

    @property
    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *children(self.proc.pid)]

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
