"""A real gateway that compresses although the probe asked for `Accept-Encoding: identity`:
nginx with `gzip_static always` (it then sends the .gz file to every client, as a
misconfigured gateway does), serving the model list (a gzipped SSE stream: test_network.py,
static files cannot answer the chat probe's POST)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.config import TargetConfig
from exporter.probes import ProbeContext, make_client, probe_models
from tests.core.helpers import MODEL
from tests.core.nginx import running_nginx

MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


@pytest.fixture
def gzipping_nginx(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "models.gz").write_bytes(gzip.compress(MODELS))
    (root / "bomb" / "v1").mkdir(parents=True)
    bomb = gzip.compress(b'{"data": [' + b" " * (32 << 20) + b"]}")  # 32 MiB in ~32 KiB
    (root / "bomb" / "v1" / "models.gz").write_bytes(bomb)
    server = f"""
    listen 127.0.0.1:{{port}};
    root {root};
    gzip_static always;
    location = /v1/models {{ default_type application/json; }}
    location = /bomb/v1/models {{ default_type application/json; }}
"""
    with running_nginx(tmp_path, server) as port:
        yield f"http://127.0.0.1:{port}"


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
