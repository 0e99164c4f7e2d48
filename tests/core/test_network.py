"""The networks users run, on 127.0.0.1: a name whose first address drops SYNs, a proxy
(CONNECT for https, absolute form for http, the environment's when asked), a body cut by a
reset, a gateway that compresses anyway, a redirect, an international host name."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, TargetConfig, load_config
from exporter.errors import ServerDisconnected
from exporter.probes import (
    ProbeContext,
    connect,
    make_client,
    probe_chat,
    probe_health,
    probe_models,
)
from exporter.probes.client import Http1Transport
from exporter.probes.results import ProbeResult, Reason
from tests.core.certs import Pki, make_pki
from tests.core.helpers import MODEL, vllm_stream
from tests.core.proxy import running_proxy
from tests.core.test_client import OK, Raw, answer, fetch, raw

MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()


def _resolving(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """The resolver seam: `names` resolve to the given addresses (in that order); others fail."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        asked.append(host)
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]]

    monkeypatch.setattr(connect, "resolve", resolve)
    return asked


async def run(target: TargetConfig, probe: Any = probe_health, timeout: float = 3.0) -> ProbeResult:
    async with make_client(8) as client:
        result: ProbeResult = await probe(ProbeContext(client, target, timeout, MODEL))
        return result


# ---- every address of a name ---------------------------------------------------------------
@pytest.fixture
def black_hole() -> Iterator[tuple[int, list[socket.socket]]]:
    """127.0.0.2:PORT drops every SYN (a listener whose accept queue is full: Linux drops the
    handshake rather than refuse it), and 127.0.0.1:PORT is free for a real server."""
    probe_sock = socket.create_server(("127.0.0.1", 0))
    port = probe_sock.getsockname()[1]
    probe_sock.close()
    hole = socket.socket()
    hole.bind(("127.0.0.2", port))
    hole.listen(0)
    held = [hole]
    for _ in range(8):  # fill the accept queue (nobody accepts)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.2", port))
        held.append(s)
    check = socket.socket()
    check.settimeout(0.5)
    with pytest.raises(TimeoutError):  # the hole really drops SYNs
        check.connect(("127.0.0.2", port))
    check.close()
    try:
        yield port, held
    finally:
        for s in held:
            s.close()


async def _past_the_black_hole(port: int) -> tuple[ProbeResult, int]:
    state = Raw(answer(OK))
    server = await asyncio.start_server(state._serve, "127.0.0.1", port)
    try:
        result = await run(TargetConfig(name="t", url=f"http://model.test:{port}"), timeout=4.0)
    finally:
        server.close()
        await server.wait_closed()
    return result, state.connections


async def test_a_name_whose_first_address_drops_syns_is_reached_on_the_next(
    monkeypatch: pytest.MonkeyPatch, black_hole: tuple[int, list[socket.socket]]
) -> None:
    port, _ = black_hole
    asked = _resolving(monkeypatch, {"model.test": ["127.0.0.2", "127.0.0.1"]})
    result, connections = await _past_the_black_hole(port)
    assert result.success, result.detail  # not the whole connect budget on the black hole
    assert asked == ["model.test"] and connections == 1


async def test_a_name_none_of_whose_addresses_answer_is_a_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving(monkeypatch, {"model.test": ["127.0.0.1", "127.0.0.1"]})
    probe_sock = socket.create_server(("127.0.0.1", 0))
    port = probe_sock.getsockname()[1]
    probe_sock.close()  # nothing listens: refused twice
    result = await run(TargetConfig(name="t", url=f"http://model.test:{port}"))
    assert result.reason is Reason.CONNECT_ERROR and "refused" in result.detail, result.detail


# ---- proxies ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_http_through_a_proxy_in_absolute_form_with_its_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving(monkeypatch, {})  # model.test is known to the proxy only
    login = "Basic " + base64.b64encode(b"me:proxy-pw-77").decode()
    async with raw(answer(OK)) as server, running_proxy(auth=login) as proxy:
        port = server.url.rsplit(":", 1)[1]
        proxy_url = proxy.url.replace("http://", "http://me:proxy-pw-77@")
        ok = await run(
            TargetConfig(
                name="t", url=f"http://model.test:{port}", proxy_url=proxy_url, server="vllm"
            )
        )
        direct = await run(TargetConfig(name="t", url=f"http://model.test:{port}"))
        wrong = await run(
            TargetConfig(
                name="t",
                url=f"http://model.test:{port}",
                proxy_url=proxy.url.replace("http://", "http://me:wrong-pw-99@"),
            )
        )
    assert ok.success, ok.detail
    assert proxy.seen[0].startswith(f"GET http://model.test:{port}/health HTTP/1.1\r\n")
    assert f"Proxy-Authorization: {login}" in proxy.seen[0]
    assert b"proxy-authorization" not in server.heads[0].lower()  # the proxy's, not the target's
    assert direct.reason is Reason.CONNECT_ERROR  # without the proxy the name is unknown
    assert wrong.status_code == 407 and "[redacted]" in wrong.detail, wrong.detail
    assert "wrong-pw" not in wrong.detail  # the proxy echoed its login: never shown


async def _through_a_tunnel(pki: Pki) -> tuple[list[ProbeResult], list[str], int]:
    state = Raw(answer(OK))
    server = await asyncio.start_server(state._serve, "127.0.0.1", 0, ssl=pki.server_context())
    port = server.sockets[0].getsockname()[1]
    tls = {"ca_file": str(pki.ca)}
    try:
        async with running_proxy() as proxy:
            results = [
                await run(TargetConfig(name="t", url=f"https://{host}:{port}",
                                       proxy_url=proxy.url, tls=tls))
                for host in ("model.test", "other.test")
            ]  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    return results, proxy.seen, port


async def test_https_through_a_connect_tunnel_verified_end_to_end(
    monkeypatch: pytest.MonkeyPatch, pki: Pki
) -> None:
    _resolving(monkeypatch, {})
    (ok, wrong_name), seen, port = await _through_a_tunnel(pki)
    assert ok.success, ok.detail
    assert seen[0].startswith(f"CONNECT model.test:{port} HTTP/1.1\r\n")
    assert wrong_name.reason is Reason.CONNECT_ERROR and "other.test" in wrong_name.detail


def test_staggered_connects_and_tunnels_run_on_uvloop_as_shipped(
    monkeypatch: pytest.MonkeyPatch, black_hole: tuple[int, list[socket.socket]], pki: Pki
) -> None:
    uvloop = pytest.importorskip("uvloop")
    port, _ = black_hole
    _resolving(monkeypatch, {"model.test": ["127.0.0.2", "127.0.0.1"]})
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        passed, _ = runner.run(_past_the_black_hole(port))
        _resolving(monkeypatch, {})
        (ok, wrong_name), _, _ = runner.run(_through_a_tunnel(pki))
    assert passed.success and ok.success, (passed.detail, ok.detail)
    assert wrong_name.reason is Reason.CONNECT_ERROR


async def test_the_environments_proxy_only_when_asked_and_not_for_no_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving(monkeypatch, {"direct.test": ["127.0.0.1"]})
    async with raw(answer(OK)) as server, running_proxy() as proxy:
        port = server.url.rsplit(":", 1)[1]
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "localhost,.direct.test")
        asked = TargetConfig(
            name="a", url=f"http://model.test:{port}", proxy_from_environment=True, server="vllm"
        )
        bypassed = TargetConfig(
            name="b", url=f"http://api.direct.test:{port}", proxy_from_environment=True
        )
        _resolving(monkeypatch, {"api.direct.test": ["127.0.0.1"]})
        ignored = TargetConfig(name="c", url=f"http://api.direct.test:{port}")
        results = [await run(t) for t in (asked, bypassed, ignored)]
    assert [r.success for r in results] == [True] * 3, [r.detail for r in results]
    assert len(proxy.seen) == 1 and f"http://model.test:{port}/health" in proxy.seen[0]


def test_a_proxy_url_must_be_plain_http_and_its_login_is_a_secret(tmp_path: Path) -> None:
    target = TargetConfig(name="t", url="https://x", proxy_url="http://u:pw-1234@proxy:3128")
    assert "pw-1234" not in repr(target) and target.proxy_shown == "http://proxy:3128"
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets:\n  - {name: a, url: 'https://x', proxy_url: 'socks5://p:1'}\n")
    with pytest.raises(ConfigError, match=r"targets\[0\]\.proxy_url: proxy_url must be an http"):
        load_config(cfg)


# ---- how a body ends -------------------------------------------------------------------------
async def test_a_read_to_close_body_cut_by_a_reset_is_never_complete() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + MODELS)
        await writer.drain()
        await asyncio.sleep(0.1)  # the client has read it all; then the server dies
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # SO_LINGER 0: a TCP reset, not a close

    async with raw(handler) as server, Http1Transport(8) as client:
        with pytest.raises(ServerDisconnected, match="reset"):
            await fetch(client, server.url)
        result = await run(TargetConfig(name="t", url=server.url), probe_models)
    assert result.reason is Reason.INVALID_RESPONSE and "reset" in result.detail, result.detail


async def test_a_read_to_close_body_ended_by_a_clean_close_is_complete() -> None:
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + MODELS
    async with raw(answer(wire, close=True)) as server:
        result = await run(TargetConfig(name="t", url=server.url), probe_models)
    assert result.success, result.detail


# ---- compressed although identity was asked for ----------------------------------------------
def _compressed(body: bytes, coding: str, ctype: str, chunked: bool = False) -> bytes:
    data = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Encoding: {coding}\r\n"
    if not chunked:
        return head.encode() + f"Content-Length: {len(data)}\r\n\r\n".encode() + data
    pieces = [data[i : i + 100] for i in range(0, len(data), 100)]
    wire = "".join(f"{len(p):x}\r\n" for p in [b""]).encode()[:0]
    for p in pieces:
        wire += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    return head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + wire + b"0\r\n\r\n"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_gateway_that_compresses_anyway_is_decoded(coding: str) -> None:
    models = _compressed(MODELS, coding, "application/json")
    stream = _compressed(b"".join(vllm_stream()), coding, "text/event-stream", chunked=True)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(models if n == 1 else stream)

    async with raw(handler) as server:
        target = TargetConfig(name="t", url=server.url)
        async with make_client(8) as client:
            ctx = ProbeContext(client, target, 3.0, MODEL)
            listed = await probe_models(ctx)
            chat = await probe_chat(ctx)
    assert listed.success and listed.models == (MODEL,), listed.detail
    assert chat.success and chat.content, chat.detail
    assert b"accept-encoding: identity" in server.heads[0].lower()


async def test_a_compressed_bomb_is_stopped_at_the_cap_on_decoded_bytes() -> None:
    bomb = b'{"object": "list", "data": [' + b" " * (64 << 20) + b"]}"  # 64 MiB, ~64 KiB sent
    wire = _compressed(bomb, "gzip", "application/json")
    assert len(wire) < 200_000
    async with raw(answer(wire)) as server:
        target = TargetConfig(name="t", url=server.url, max_body_bytes=1 << 20)
        result = await run(target, probe_models)
    assert result.reason is Reason.BODY_TOO_LARGE, result.detail


async def test_an_encoding_that_is_not_decoded_is_said_so() -> None:
    wire = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\n\x1b\x00\x00\x00"
    async with raw(answer(wire)) as server:
        result = await run(TargetConfig(name="t", url=server.url), probe_models)
    assert result.reason is Reason.INVALID_RESPONSE and "compressed ('br')" in result.detail


# ---- redirects, names, headers ---------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 307])
async def test_a_redirect_is_not_followed_and_its_location_is_shown(status: int) -> None:
    wire = (f"HTTP/1.1 {status} Moved\r\nLocation: https://u:loc-pw-55@new.example/health\r\n"
            "Content-Length: 0\r\n\r\n").encode()  # fmt: skip
    async with raw(answer(wire)) as server:
        result = await run(TargetConfig(name="t", url=server.url, server="vllm"))
    assert result.reason is Reason.HTTP_STATUS and result.status_code == status
    assert result.detail == f"HTTP {status} redirected to https://new.example/health"
    assert len(server.heads) == 1  # asked once: not followed


async def test_an_international_host_name_is_sent_as_punycode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _resolving(monkeypatch, {"xn--bcher-kva.test": ["127.0.0.1"]})
    async with raw(answer(OK)) as server:
        port = server.url.rsplit(":", 1)[1]
        result = await run(TargetConfig(name="t", url=f"http://bücher.test:{port}"))
    assert result.success, result.detail
    assert asked == ["xn--bcher-kva.test"]
    assert f"\r\nHost: xn--bcher-kva.test:{port}\r\n".encode() in server.heads[0]


@pytest.mark.parametrize(
    ("value", "said"),
    [('"a\\0b"', "U+0000"), ('"caf\\u00e9"', "U+00E9"), ('"a\\rb"', "a line break")],
)
def test_a_header_value_that_is_not_printable_ascii_is_refused_at_load(
    tmp_path: Path, value: str, said: str
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"targets:\n  - name: a\n    url: http://x\n    headers: {{X-Team: {value}}}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(cfg)
    message = str(refused.value)
    assert str(cfg) in message and "targets[0].headers" in message and said in message, message
    assert "X-Team" in message


async def test_an_empty_body_labelled_gzip_is_empty_not_broken() -> None:
    wire = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"
    async with raw(answer(wire)) as server:
        result = await run(TargetConfig(name="t", url=server.url))
    assert result.success, result.detail


async def test_a_gzip_body_cut_short_is_refused() -> None:
    data = gzip.compress(MODELS)[:-12]  # no end of stream
    wire = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(data)
    async with raw(answer(wire + data)) as server:
        result = await run(TargetConfig(name="t", url=server.url), probe_models)
    assert result.reason is Reason.INVALID_RESPONSE and "ended early" in result.detail
