"""The helpers written once: the non-probe HTTP client's policy, bounded reads, addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import BaseModel, ValidationError

from exporter.errors import BodyTooLarge, HeartbeatError, validation_messages
from exporter.util.http import http_client, read_capped
from exporter.util.net import is_loopback, redact_url
from tests.conftest import free_port
from tests.servers import serve_aiohttp


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_capped_refuses_declared_and_streamed_oversize() -> None:
    assert await read_capped(_chunks(b"ab", b"cd"), 4) == b"abcd"
    with pytest.raises(BodyTooLarge, match="Content-Length 5"):
        await read_capped(_chunks(b"a"), 4, declared="5")
    with pytest.raises(BodyTooLarge) as info:
        await read_capped(_chunks(b"abc", b"de"), 4, declared="not a number")
    assert info.value.limit == 4
    assert isinstance(info.value, HeartbeatError) and not isinstance(info.value, ValueError)


async def test_http_client_ignores_proxy_env_and_does_not_follow_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def agent(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("User-Agent", ""))

    app = web.Application()
    app.router.add_get("/moved", moved)
    app.router.add_get("/agent", agent)
    async with serve_aiohttp(app) as url, http_client(timeout=5.0) as client:
        response = await client.get(url + "/moved")  # through the dead proxy it would fail
        assert response.status_code == 302
        assert (await client.get(url + "/agent")).text.startswith("llm-heartbeat/")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_redact_url() -> None:
    assert redact_url("http://u:p@h:8000/x?q=1") == "http://h:8000/x?q=1"
    assert redact_url("http://u@[::1]/") == "http://[::1]/"
    assert redact_url("http://h/") == "http://h/"


def test_validation_messages_drop_the_input_and_prefixes() -> None:
    class M(BaseModel):
        n: int

    with pytest.raises(ValidationError) as info:
        M.model_validate({"n": "secret-value"})
    [(where, message)] = validation_messages(info.value)
    assert where == "n"
    assert "secret-value" not in message


def test_rotating_secret_is_kept_then_read_again(tmp_path: Path) -> None:
    """A probe's key file is not read on every probe, a rotation is seen once the value is
    older than max_age, and a file missing mid-rotation keeps the last key."""
    from exporter.errors import SecretUnavailable
    from exporter.util.secrets import read_rotating

    key = tmp_path / "key"
    key.write_text("sk-one\n")
    assert read_rotating(key, max_age=60) == "sk-one"
    key.write_text("sk-two\n")
    assert read_rotating(key, max_age=60) == "sk-one"  # kept
    assert read_rotating(key, max_age=0) == "sk-two"  # read again
    key.unlink()
    assert read_rotating(key, max_age=0) == "sk-two"  # unreadable: the last one
    key.write_text("\n")
    assert read_rotating(key, max_age=0) == "sk-two"  # truncated mid-rotation: the last one
    with pytest.raises(SecretUnavailable, match="never"):
        read_rotating(tmp_path / "never", max_age=0)
