"""What a browser on the operator's machine can be made to do (issue 26): a page from another
origin cannot reload the exporter through its loopback trust, and no JSON answer is stored
by a cache (the token-protected recovery status included)."""

from __future__ import annotations

from pathlib import Path

import httpx

from exporter.config import Settings, TargetConfig
from tests.core.live import running_exporter

OFF = {"models": {"enabled": False}, "chat": {"enabled": False}}


def _settings(tmp_path: Path) -> Settings:
    target = TargetConfig(name="a", url="http://127.0.0.1:9", checks=OFF)  # type: ignore[arg-type]
    return Settings(targets=[target], history_file=tmp_path / "h.jsonl")


async def test_reload_refuses_a_cross_origin_browser_request(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    async with running_exporter(_settings(tmp_path), cfg) as (_, base), httpx.AsyncClient() as c:
        refused = [
            {"Origin": "http://evil.example"},  # a page elsewhere posting to loopback
            {"Origin": "null"},  # a sandboxed frame or a file:// page
            {"Content-Type": "text/plain"},  # a "simple" request: no preflight, old browsers
            {"Content-Type": "application/x-www-form-urlencoded"},  # an HTML form
            {"Sec-Fetch-Site": "cross-site"},
        ]
        for headers in refused:
            r = await c.post(base + "/-/reload", headers=headers, content=b"x")
            assert r.status_code == 403, (headers, r.status_code, r.text)
            assert "cross-origin" in r.json()["error"]
        allowed = [
            {},  # curl -X POST, a script, a sidecar
            {"Origin": base},  # a page of the exporter itself
            {"Sec-Fetch-Site": "same-origin", "Origin": base},
            {"Content-Type": "application/json"},  # needs a preflight from a browser
        ]
        for headers in allowed:
            r = await c.post(base + "/-/reload", headers=headers)
            assert r.status_code == 200, (headers, r.text)
    assert len(refused) == 5 and len(allowed) == 4


async def test_json_answers_are_never_stored(tmp_path: Path) -> None:
    async with running_exporter(_settings(tmp_path)) as (_, base), httpx.AsyncClient() as c:
        for method, path in [
            ("GET", "/api/v1/targets"),
            ("GET", "/api/v1/targets/a"),
            ("GET", "/api/v1/targets/nope"),
            ("GET", "/api/v1/recovery"),
            ("POST", "/-/reload"),
            ("GET", "/-/ready"),
        ]:
            r = await c.request(method, base + path)
            assert r.headers.get("cache-control") == "no-store", (path, r.headers)
        # the status page's assets keep their own caching
        page = await c.get(base + "/")
        assert page.headers.get("cache-control") == "no-store"
