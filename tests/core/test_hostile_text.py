"""Hostile text from a target (lone surrogates, control characters, floods) reaches no view
unclean: /metrics, the JSON API, the status page and the history file keep working, for every
target, also after a restart that reads the history back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from exporter.config import Settings, TargetConfig
from exporter.engine.history import read_history
from exporter.util.text import clean_text, safe_json
from tests.conftest import free_port
from tests.waiting import wait_for

from .live import running_exporter, scrape, value

# valid JSON that decodes to strings no UTF-8 encoder accepts, plus a forged log line
EVIL_ID = '"\\ud800evil\\nFAKE LOG LINE\\u0000"'
MODELS = ('{"object":"list","data":[{"id":' + EVIL_ID + ',"object":"model"}]}').encode()
ERROR = (
    '{"error":{"message":"boom \\udfff\\r\\n' + "x" * 5000 + '","type":"Internal","code":500}}'
).encode()


@contextlib.asynccontextmanager
async def hostile_server() -> AsyncIterator[str]:
    """A server that answers /health 200, lists a model with a lone surrogate in its id and
    answers chat with a 500 whose message carries another: a raw socket, no framework."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            status, body = {
                b"/health": (b"200 OK", b""),
                b"/v1/models": (b"200 OK", MODELS),
            }.get(path, (b"500 Internal Server Error", ERROR))
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                b"content-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def test_clean_text_removes_what_breaks_encoders_and_logs() -> None:
    dirty = "a\ud800b\nc\x00d\u2028e" + "z" * 400
    clean = clean_text(dirty, 50)
    clean.encode("utf-8")  # would raise on a surrogate
    assert "\n" not in clean and "\x00" not in clean and "\u2028" not in clean
    assert clean.startswith("a\ufffdb c\ufffdd e") and len(clean) == 50
    assert clean_text("plain text") == "plain text"


def test_safe_json_encodes_surrogates_and_nan() -> None:
    body = json.loads(safe_json({"id": "\ud800", "x": float("nan"), "ok": [1.5]}))
    assert body["x"] is None and body["ok"] == [1.5]


async def test_hostile_text_breaks_no_view_and_survives_restart(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    async with hostile_server() as url:
        settings = Settings(
            targets=[
                TargetConfig(
                    name="evil",
                    url=url,
                    thresholds={"failures_to_down": 1, "retry_interval": 0.2},
                ),
                TargetConfig(name="other", url=url.rsplit(":", 1)[0] + ":1"),
            ],
            default_interval=0.5,
            history_file=history,
        )
        async with running_exporter(settings) as (_, base):

            async def degraded() -> bool:
                text = await scrape(base)
                return value(text, "llm_target_state", target="evil", state="degraded") == 1.0

            await wait_for(degraded, timeout=30)
            async with httpx.AsyncClient() as c:
                for path in ("/metrics", "/api/v1/targets", "/api/v1/targets/evil", "/"):
                    r = await c.get(base + path)
                    assert r.status_code == 200, path
                    assert "\ud800" not in r.text and "FAKE LOG LINE\n" not in r.text
                api = (await c.get(base + "/api/v1/targets/evil")).json()
            detail = api["checks"]["chat"]["detail"]
            assert detail.startswith("HTTP 500 Internal: boom \ufffd") and len(detail) <= 300

            async def other_down() -> bool:  # the other target's view carries on
                text = await scrape(base)
                return value(text, "llm_target_state", target="other", state="down") == 1.0

            await wait_for(other_down, timeout=30)
    # the history was written with clean text and reads back into working views
    records = read_history(history, 100)
    assert records and all(json.dumps(r, ensure_ascii=False).encode() for r in records)
    assert any(r["target"] == "evil" and r["to"] == "degraded" for r in records)


async def test_old_history_with_surrogates_cannot_break_views(tmp_path: Path) -> None:
    """A history file written by an earlier version (text not yet cleaned) loads clean."""
    history = tmp_path / "history.jsonl"
    history.write_text(
        '{"time":1,"target":"gone","from":"up","to":"down","reason":"x","detail":"\\ud800"}\n'
    )
    settings = Settings(targets=[], history_file=history)
    async with running_exporter(settings) as (_, base), httpx.AsyncClient() as c:
        for path in ("/metrics", "/api/v1/targets", "/"):
            assert (await c.get(base + path)).status_code == 200, path
