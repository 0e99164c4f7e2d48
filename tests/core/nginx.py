"""Debian's nginx as an unprivileged foreground process on a free loopback port, with the
`server { }` block a test writes (`{port}` stands for the port)."""

from __future__ import annotations

import getpass
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port, require_binary
from tests.waiting import wait_until

__all__ = ["running_nginx"]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def running_nginx(tmp: Path, server: str) -> Iterator[int]:
    """nginx serving `server` (its `listen 127.0.0.1:{port}` included); yields the port."""
    binary = require_binary("nginx")
    port = free_port()
    temp = "".join(f"  {k}_temp_path {tmp}/{k};\n" for k in ("client_body", "proxy"))
    conf = tmp / "nginx.conf"
    conf.write_text(
        "worker_processes 1;\ndaemon off;\n"
        f"user {getpass.getuser()};\n"  # the test's files (ignored unless run as root)
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  access_log off;\n{temp}  server {{\n{server.replace('{port}', str(port))}\n  }}\n}}\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port), 20, "nginx listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
