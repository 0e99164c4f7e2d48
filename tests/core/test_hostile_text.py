"""Hostile text from a target (lone surrogates, control characters, floods) reaches no view
unclean: /metrics, the JSON API, the status page and the history file keep working, for every
target, also after a restart that reads the history back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

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


def _clean(body: bytes, what: str) -> str:
    """The body is strict UTF-8 and holds neither a surrogate nor a forged log line."""
    text = body.decode("utf-8")  # raises on anything a surrogate could have become
    assert "\ud800" not in text and "\udfff" not in text, what
    assert "\nFAKE LOG LINE" not in text and "\x00" not in text, what
    return text


async def test_hostile_text_through_every_view_the_log_and_the_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every endpoint that shows a target's words, /probe (and its debug output) included,
    the log and the history file on disk."""
    history = tmp_path / "history.jsonl"
    async with hostile_server() as url:
        host = url.removeprefix("http://")
        settings = Settings(
            targets=[
                TargetConfig(name="evil", url=url, thresholds={"failures_to_down": 1}),
            ],
            default_interval=0.5,
            history_file=history,
            probe={"modules": {"vllm": {"timeout": 5}}, "allowed_targets": [host]},
        )
        with caplog.at_level(logging.INFO):
            async with running_exporter(settings) as (_, base), httpx.AsyncClient() as c:

                async def degraded() -> bool:
                    text = await scrape(base)
                    return value(text, "llm_target_state", target="evil", state="degraded") == 1.0

                await wait_for(degraded, timeout=30)
                await asyncio.sleep(1.1)  # past the read endpoints' snapshot age
                paths = [
                    "/metrics",
                    "/api/v1/targets",
                    "/api/v1/targets/evil",
                    "/",
                    "/?q=evil",
                    "/api/v1/recovery",
                    f"/probe?target={host}&module=vllm",
                    f"/probe?target={host}&module=vllm&debug=true",
                ]
                seen = []
                for path in paths:
                    r = await c.get(base + path, timeout=30)
                    assert r.status_code in (200, 404), (path, r.status_code)
                    seen.append(_clean(r.content, path))
                assert len(seen) == len(paths)
                assert "evil" in seen[1] and "\\ufffd" in seen[1]  # replaced, ASCII-escaped
                assert "llm_target" in seen[0] and "probe_success" in seen[6]
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "evil" in log_text
    for line in log_text.splitlines():
        assert not line.startswith("FAKE LOG LINE"), line
    raw = history.read_bytes()
    _clean(raw, "history file")
    assert raw.endswith(b"\n") and b"degraded" in raw


async def test_a_password_in_a_target_url_is_shown_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A percent-encoded password (the only form accepted) never reaches a view, the log or
    the history; the unencoded form is refused at load (tests/core/test_cli_config.py)."""
    history = tmp_path / "history.jsonl"
    async with hostile_server() as url:
        secret_url = url.replace("http://", "http://admin:s3cr%2FetPW@")
        settings = Settings(
            targets=[TargetConfig(name="evil", url=secret_url, thresholds={"failures_to_down": 1})],
            default_interval=0.5,
            history_file=history,
        )
        with caplog.at_level(logging.DEBUG):
            async with running_exporter(settings) as (_, base), httpx.AsyncClient() as c:

                async def degraded() -> bool:
                    text = await scrape(base)
                    return value(text, "llm_target_state", target="evil", state="degraded") == 1.0

                await wait_for(degraded, timeout=30)
                await asyncio.sleep(1.1)
                bodies = [
                    (await c.get(base + p)).text
                    for p in ("/metrics", "/api/v1/targets", "/api/v1/targets/evil", "/")
                ]
    shown = "\n".join([*bodies, *(r.getMessage() for r in caplog.records)])
    shown += history.read_text()
    assert url.removeprefix("http://") in shown  # the host is shown...
    for secret in ("s3cr", "etPW", "admin:"):  # ...never the credentials
        assert secret not in shown, secret
