"""A target that repeats the key it was sent (a gateway's 401 "invalid key: Bearer sk-...", a
proxy's error page with the Basic credentials) never gets it stored or shown: the API, the
status page, the JSON log, the history file and /metrics all see "[redacted]"."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from exporter.config import Settings, TargetConfig
from exporter.logs import JsonFormatter
from exporter.probes import ProbeContext, make_client, probe_chat, probe_health, probe_models
from exporter.probes.redact import MARKER
from tests.core.helpers import MODEL
from tests.servers import serve_aiohttp
from tests.waiting import wait_for

from .live import running_exporter, scrape

KEY = "sk-live-0123456789abcdef"
HEADER = "hdr-secret-9f8e7d6c5b"
PASSWORD = "pw-Zq81/x"  # written percent-encoded in the URL
SECRETS = (KEY, HEADER, PASSWORD, "pw-Zq81%2Fx", base64.b64encode(b"alice:pw-Zq81/x").decode())


async def _echo(request: web.Request) -> web.Response:
    """Every way a careless server repeats what it was sent: the Authorization header, a
    decoded Basic login, a custom key header; as an error, a model id, a completion."""
    auth = request.headers.get("Authorization", "")
    said = f"invalid credentials: {auth}"
    if auth.startswith("Basic "):
        said += f" (login {base64.b64decode(auth[6:]).decode()})"
    said += f" x-api-key={request.headers.get('X-Api-Key', '')}"
    if request.path.startswith("/ok") and request.path.endswith("/v1/models"):
        return web.json_response({"object": "list", "data": [{"id": said}]})
    if request.path.startswith("/ok") and request.path.endswith("/chat/completions"):
        await request.read()
        choice = {"index": 0, "message": {"role": "assistant", "content": said},
                  "finish_reason": "stop"}  # fmt: skip
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [choice]})
    return web.json_response({"error": {"message": said, "type": "auth"}}, status=401)


def _app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


def _targets(url: str) -> list[TargetConfig]:
    fast = {"failures_to_down": 1, "retry_interval": 0.2}
    host = url.removeprefix("http://")
    return [
        TargetConfig(
            name="keyed",
            url=url,
            api_key=KEY,
            headers={"X-Api-Key": HEADER},
            thresholds=fast,
            model=MODEL,
        ),
        TargetConfig(
            name="basic", url=f"http://alice:pw-Zq81%2Fx@{host}", thresholds=fast, model=MODEL
        ),
    ]


def _clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {where}"


async def test_each_probe_keeps_the_marker_not_the_key() -> None:
    async with serve_aiohttp(_app()) as url:
        keyed = TargetConfig(name="k", url=url, api_key=KEY, headers={"X-Api-Key": HEADER})
        basic = TargetConfig(name="b", url=f"http://alice:pw-Zq81%2Fx@{url[7:]}")
        happy = TargetConfig(
            name="o", url=url + "/ok", api_key=KEY, checks={"chat": {"stream": False}}
        )
        async with make_client(8) as client:
            results = [
                await probe(ProbeContext(client, target, 3.0, MODEL))
                for target in (keyed, basic)
                for probe in (probe_health, probe_models, probe_chat)
            ]
            models = await probe_models(ProbeContext(client, happy, 3.0, None))
            chat = await probe_chat(ProbeContext(client, happy, 3.0, MODEL))
    assert len(results) == 6
    for result in results:
        assert result.status_code == 401 and MARKER in result.detail, result.detail
        _clean(result.detail, result.check)
    assert "(login [redacted]:[redacted])" in results[3].detail  # the decoded login too
    assert models.models and MARKER in models.models[0]
    assert chat.content is not None and MARKER in chat.content
    _clean(" ".join(models.models) + chat.content, "the kept answer")


async def test_no_view_shows_a_key_the_target_echoed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve_aiohttp(_app()) as url:
        settings = Settings(
            targets=_targets(url),
            default_interval=0.5,
            history_file=tmp_path / "history.jsonl",
            metrics={"detail": "full"},
        )
        async with running_exporter(settings) as (_, base), httpx.AsyncClient() as http:

            async def both_refused() -> bool:
                api = (await http.get(base + "/api/v1/targets")).json()
                return (
                    all(
                        "invalid credentials" in json.dumps(t["checks"]) and t["state"] == "down"
                        for t in api["targets"]
                    )
                    and len(api["targets"]) == 2
                )

            await wait_for(both_refused, timeout=30)
            api = (await http.get(base + "/api/v1/targets")).text
            page = (await http.get(base + "/")).text
            one = (await http.get(base + "/api/v1/targets/keyed")).text
            metrics = await scrape(base)
    history = (tmp_path / "history.jsonl").read_text()
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert MARKER in api and MARKER in history, history  # the echo happened, and was caught
    assert "invalid credentials" in page
    for text, where in ((api, "API"), (one, "API (one target)"), (page, "page"),
                        (history, "history"), (logged, "log"), (metrics, "metrics")):  # fmt: skip
        _clean(text, where)
