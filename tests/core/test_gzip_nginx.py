"""A real gateway that compresses although the probe asked for `Accept-Encoding: identity`:
nginx with `gzip_static always` (it then sends the .gz file to every client, as a
misconfigured gateway does), serving the model list (a gzipped SSE stream: test_network.py,
static files cannot answer the chat probe's POST)."""

from __future__ import annotations

import getpass
import gzip
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.config import TargetConfig
from exporter.probes import ProbeContext, make_client, probe_models
from tests.conftest import free_port, require_binary
from tests.core.helpers import MODEL
from tests.waiting import wait_until

MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


@pytest.fixture
def gzipping_nginx(tmp_path: Path) -> Iterator[str]:
    binary = require_binary("nginx")
    root = tmp_path / "www"
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "models.gz").write_bytes(gzip.compress(MODELS))
    (root / "bomb" / "v1").mkdir(parents=True)
    bomb = gzip.compress(b'{"data": [' + b" " * (32 << 20) + b"]}")  # 32 MiB in ~32 KiB
    (root / "bomb" / "v1" / "models.gz").write_bytes(bomb)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    temp = "".join(f"  {k}_temp_path {tmp_path}/{k};\n" for k in ("client_body", "proxy"))
    conf.write_text(f"""
worker_processes 1;
daemon off;
user {getpass.getuser()};  # the files are the test's (ignored unless run as root)
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
{temp}
  server {{
    listen 127.0.0.1:{port};
    root {root};
    gzip_static always;
    gzip_vary on;
    location = /v1/models {{ default_type application/json; }}
    location = /bomb/v1/models {{ default_type application/json; }}
  }}
}}
""")
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port), 20, "nginx listening")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


async def test_nginx_gzip_json_despite_identity_is_decoded(gzipping_nginx: str) -> None:
    target = TargetConfig(name="t", url=gzipping_nginx)
    async with make_client(8) as client:
        models = await probe_models(ProbeContext(client, target, 5.0, MODEL))
    assert models.success and models.models == (MODEL,), models.detail


async def test_a_gzip_bomb_from_nginx_stops_at_the_cap(gzipping_nginx: str) -> None:
    target = TargetConfig(name="t", url=gzipping_nginx + "/bomb", max_body_bytes=1 << 20)
    async with make_client(8) as client:
        result = await probe_models(ProbeContext(client, target, 5.0, MODEL))
    assert result.reason is not None and result.reason.value == "body_too_large", result.detail
