"""The engine probe against each server's /metrics (fixtures written from each server's source,
tests/core/fixtures/engine/) and against hostile pages: every bad input gives a reason, in
bounded memory and time. Through the production transport, against a local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from exporter.probes import probe_engine
from exporter.probes.results import Check, Reason

from .local_server import LocalServer

FIXTURES = Path(__file__).parent / "fixtures" / "engine"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


def serve(server: LocalServer, body: bytes | str, status: int = 200) -> None:
    content = body.encode() if isinstance(body, str) else body
    server.get("/metrics").respond(status, content=content)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("page", "flavour", "expected"),
    [
        # two data-parallel engines: counts and counters summed, the ratio is the fuller one
        ("vllm_v1_dp2.txt", "vllm", (5, 7, 0.61, 12345 + 6789, 12345 + 6789)),
        ("vllm_v0.txt", "vllm", (4, 1, 0.35, 5000, 5000)),  # gpu_cache_usage_perc accepted
        ("sglang.txt", "sglang", (28, 12, 0.28, 7.557572e6, 7.557572e6)),
        # progress is llama_decode() calls (tokens_predicted moves only when a request ends);
        # current builds have no KV gauge, older ones had kv_cache_usage_ratio
        ("llamacpp_0336.txt", "llamacpp", (1, 2, None, 301, 256)),
        ("llamacpp_old_build.txt", "llamacpp", (1, 3, 0.5, 3577, 3469)),
        # forward passes of both methods; tokens from the generated-tokens histogram's sum
        ("tgi.txt", "tgi", (8, 4, None, 5520, 20480)),
    ],
)
@pytest.mark.parametrize("configured", ["auto", "named"])
async def test_each_server_is_read_by_its_own_names(
    server: LocalServer, page: str, flavour: str, expected: tuple, configured: str
) -> None:
    serve(server, fixture(page))
    chosen = "auto" if configured == "auto" else flavour
    r = await probe_engine(server.context(checks={"engine": {"flavour": chosen}}))
    assert r.success and r.check is Check.ENGINE, r.detail
    s = r.engine
    assert s is not None and s.flavour == flavour
    assert (s.running, s.waiting, s.kv_usage, s.progress, s.generated) == pytest.approx(expected)


async def test_a_metrics_page_without_the_servers_series_is_no_engine_view(
    server: LocalServer,
) -> None:
    """vLLM with --disable-log-stats still serves /metrics, without any vllm:* series."""
    serve(server, fixture("sglang.txt"))
    r = await probe_engine(server.context(checks={"engine": {"flavour": "vllm"}}))
    assert r.success and r.engine is None and r.reason is None
    assert "no engine view" in r.detail and "--disable-log-stats" in r.detail


async def test_a_page_that_is_not_prometheus_text_is_invalid(server: LocalServer) -> None:
    serve(server, "vllm_num_requests is 3, trust me\n")
    r = await probe_engine(server.context(checks={"engine": {"flavour": "vllm"}}))
    assert not r.success and r.reason is Reason.INVALID_RESPONSE
    assert "no engine metrics of vllm" in r.detail and "vllm:num_requests_running" in r.detail


async def test_names_for_a_server_no_flavour_knows(server: LocalServer) -> None:
    serve(
        server,
        "# TYPE my_active gauge\nmy_active 2\n# TYPE my_queue gauge\nmy_queue 9\n"
        "# TYPE my_tokens_total counter\nmy_tokens_total 77\n",
    )
    names = {"running": ["my_active"], "waiting": ["my_queue"], "progress": ["my_tokens"]}
    r = await probe_engine(server.context(checks={"engine": {"names": names}}))
    assert r.success and r.engine is not None, r.detail
    assert (r.engine.flavour, r.engine.running, r.engine.waiting, r.engine.progress) == (
        "custom",
        2,
        9,
        77,
    )


async def test_404_is_no_engine_view_not_a_fault(server: LocalServer) -> None:
    serve(server, '{"detail":"Not Found"}', status=404)
    r = await probe_engine(server.context())
    assert r.success and r.reason is None and r.engine is None
    assert "no engine view" in r.detail and "not a fault" in r.detail


@pytest.mark.parametrize(
    ("name", "body", "words"),
    [
        ("HTML", "<html><body>502 Bad Gateway</body></html>", "no engine metrics"),
        ("binary", b"\x00\xff\xfe\x1b[0m%%", "no engine metrics"),
        ("empty", "", "no engine metrics"),
        (
            "a broken line of one of our names",
            'vllm:num_requests_running{engine="0" 3\n',
            "not Prometheus text format",
        ),
        ("a value that is not a number", "vllm:num_requests_running abc\n", "not Prometheus"),
        ("NaN", "vllm:num_requests_running 1\nvllm:kv_cache_usage_perc NaN\n", "nan"),
        ("+Inf", "vllm:num_requests_waiting +Inf\n", "inf"),
        ("negative count", "vllm:num_requests_waiting -3\n", "-3"),
        (
            "a percentage, not a ratio",
            "vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 87\n",
            "not a ratio",
        ),
        (
            "no running or waiting",
            "vllm:generation_tokens_total 5\n",
            "neither running nor waiting",
        ),
        (
            "invalid UTF-8 in our lines",
            b'vllm:num_requests_running{model_name="\xff"} 1\n',
            "UTF-8",
        ),
    ],
)
async def test_bad_pages_give_a_clear_reason(
    server: LocalServer, name: str, body: str | bytes, words: str
) -> None:
    serve(server, body)
    r = await probe_engine(server.context())
    assert not r.success and r.reason is Reason.INVALID_RESPONSE, name
    assert words.lower() in r.detail.lower(), (name, r.detail)


async def test_garbage_in_lines_that_are_not_ours_is_not_our_business(
    server: LocalServer,
) -> None:
    serve(server, b"this is { not prometheus\n\x00\x01\n" + fixture("vllm_v1_dp2.txt"))
    r = await probe_engine(server.context())
    assert r.success and r.engine is not None and r.engine.running == 5


async def test_a_100_mb_page_is_refused_after_the_cap_not_read_whole(
    server: LocalServer,
) -> None:
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse()
        await resp.prepare(request)
        line = b'vllm:num_requests_running_x{engine="0"} 1\n' * 1600  # ~64 KiB, not ours
        try:
            while sent < 100 << 20:
                await resp.write(line)
                sent += len(line)
        except ConnectionError:  # the probe hung up
            pass
        return resp

    server.get("/metrics").handle(huge)
    r = await probe_engine(server.context(checks={"engine": {"max_bytes": 1 << 20}}))
    assert not r.success and r.reason is Reason.BODY_TOO_LARGE
    # stopped after the 1 MiB cap; what the loopback socket buffers took is on top
    assert sent < 32 << 20


async def test_too_many_lines_of_our_names_are_refused(server: LocalServer) -> None:
    body = "".join(f'vllm:num_requests_running{{engine="{i}"}} 1\n' for i in range(30_000))
    serve(server, body)
    r = await probe_engine(server.context())
    assert not r.success and "more than" in r.detail


async def test_a_trickling_page_cannot_outlive_the_deadline(server: LocalServer) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for b in fixture("vllm_v0.txt"):
            await asyncio.sleep(0.05)
            await resp.write(bytes([b]))
        return resp

    server.get("/metrics").handle(trickle)
    r = await probe_engine(server.context(timeout=0.5))
    assert not r.success and r.reason is Reason.TIMEOUT


async def test_the_page_arriving_in_pieces_is_read_whole(server: LocalServer) -> None:
    page = fixture("vllm_v1_dp2.txt")
    parts = [page[i : i + 7] for i in range(0, len(page), 7)]
    server.get("/metrics").stream(parts, ctype="text/plain; version=0.0.4")
    r = await probe_engine(server.context())
    assert r.success and r.engine is not None and r.engine.waiting == 7
