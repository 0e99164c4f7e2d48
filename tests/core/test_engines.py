"""Each server's engine view read as its source writes it (fixtures in fixtures/engine/,
written from vLLM 0.34, SGLang 0.5.23, llama.cpp as vendored in llama-cpp-python 0.3.36 and
TGI's backends/v3), through the production transport against a local server; and the page
hardening: a page padded with MiBs of blank lines, absurd values, duplicated series."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exporter.probes import probe_engine
from exporter.probes.engine_metrics import LineFilter
from exporter.probes.engines import ENGINES
from exporter.probes.results import Reason

from .local_server import LocalServer

FIXTURES = Path(__file__).parent / "fixtures" / "engine"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


def serve(
    server: LocalServer, body: bytes | str, status: int = 200, path: str = "/metrics"
) -> None:
    content = body.encode() if isinstance(body, str) else body
    server.get(path).respond(status, content=content)


@pytest.mark.parametrize("flavour", ["sglang", "auto"])
async def test_sglang_total_series_is_taken_never_its_parts(
    server: LocalServer, flavour: str
) -> None:
    """priority="" is the total, priority="0"/"10" its parts; tp_rank 1 repeats rank 0."""
    serve(server, fixture("sglang_0523_priority_dp2.txt"))
    r = await probe_engine(server.context(checks={"engine": {"flavour": flavour}}))
    s = r.engine
    assert r.success and s is not None and s.flavour == "sglang", r.detail
    assert (s.running, s.waiting, s.kv_usage) == (4 + 2, 6 + 0, 0.41)
    units = {u.name: (u.running, u.waiting, u.progress) for u in s.engines}
    assert units == {"0": (4, 6, 1200), "1": (2, 0, 700)}  # one engine per dp_rank


async def test_sglang_progress_is_the_decode_counter_then_the_old_one(
    server: LocalServer,
) -> None:
    page = fixture("sglang_0523_priority_dp2.txt")
    serve(server, page)
    r = await probe_engine(server.context(checks={"engine": {"flavour": "sglang"}}))
    assert r.engine is not None and r.engine.progress == 1200 + 700  # decode mode only
    older = b"\n".join(line for line in page.splitlines() if b"realtime_tokens" not in line)
    serve(server, older)
    r = await probe_engine(server.context(checks={"engine": {"flavour": "sglang"}}))
    assert r.engine is not None and r.engine.progress == 1000 + 500


async def test_sglang_without_metrics_is_read_from_v1_loads(server: LocalServer) -> None:
    serve(server, '{"detail":"Not Found"}', status=404)
    serve(server, fixture("sglang_0523_loads.txt"), path="/v1/loads")
    r = await probe_engine(server.context(checks={"engine": {"flavour": "sglang"}}))
    s = r.engine
    assert r.success and s is not None, r.detail
    assert (s.running, s.waiting, s.kv_usage, s.progress, s.source) == (
        8,
        9,
        0.75,
        None,
        "/v1/loads",
    )
    assert [(u.name, u.running, u.waiting) for u in s.engines] == [("0", 3, 0), ("1", 5, 9)]
    call = server.get("/v1/loads").calls[-1]
    assert call.path == "/v1/loads"


async def test_vllm_data_parallel_engines_are_kept_apart(server: LocalServer) -> None:
    serve(server, fixture("vllm_v1_dp2.txt"))
    r = await probe_engine(server.context(checks={"engine": {"flavour": "vllm"}}))
    s = r.engine
    assert s is not None
    assert [(u.name, u.running, u.waiting, u.progress, u.asleep) for u in s.engines] == [
        ("0", 3, 7, 12345, False),
        ("1", 2, 0, 6789, False),
    ]


async def test_vllm_sleeping_engine_is_marked(server: LocalServer) -> None:
    page = fixture("vllm_v1_dp2.txt").replace(
        b'sleep_state="awake"} 1.0', b'sleep_state="awake"} 0.0'
    )
    serve(server, page)
    r = await probe_engine(server.context(checks={"engine": {"flavour": "vllm"}}))
    assert r.engine is not None
    assert [(u.name, u.asleep) for u in r.engine.engines] == [("0", True), ("1", False)]


async def test_llama_server_without_metrics_is_no_engine_view(server: LocalServer) -> None:
    """server-context.cpp: ERROR_TYPE_NOT_SUPPORTED -> 501, type not_supported_error."""
    body = (
        '{"error":{"code":501,"message":"This server does not support metrics endpoint. '
        'Start it with `--metrics`","type":"not_supported_error"}}'
    )
    for flavour in ("llamacpp", "auto"):
        serve(server, body, status=501)
        r = await probe_engine(server.context(checks={"engine": {"flavour": flavour}}))
        assert r.success and r.engine is None and r.reason is None, (flavour, r)
        assert "no engine view" in r.detail and "--metrics" in r.detail


async def test_another_501_is_still_a_failure(server: LocalServer) -> None:
    serve(server, '{"error":{"code":501,"message":"nope","type":"server_error"}}', status=501)
    r = await probe_engine(server.context(checks={"engine": {"flavour": "llamacpp"}}))
    assert not r.success and r.reason is Reason.SERVER_ERROR


async def test_llama_server_has_no_kv_figure(server: LocalServer) -> None:
    serve(server, fixture("llamacpp_0336.txt"))
    r = await probe_engine(server.context())
    s = r.engine
    assert s is not None and s.flavour == "llamacpp"
    assert (s.running, s.waiting, s.kv_usage, s.progress, s.generated) == (1, 2, None, 301, 256)


@pytest.mark.parametrize("flavour", ["tgi", "auto"])
async def test_a_fresh_tgi_without_its_gauges_is_idle(server: LocalServer, flavour: str) -> None:
    serve(server, fixture("tgi_fresh.txt"))
    r = await probe_engine(server.context(checks={"engine": {"flavour": flavour}}))
    s = r.engine
    assert r.success and s is not None and s.flavour == "tgi", r.detail
    assert (s.running, s.waiting, s.kv_usage) == (0, 0, None)


async def test_an_empty_tgi_page_is_idle_when_tgi_is_named(server: LocalServer) -> None:
    serve(server, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1\n")
    r = await probe_engine(server.context(checks={"engine": {"flavour": "tgi"}}))
    assert r.success and r.engine is not None and (r.engine.running, r.engine.waiting) == (0, 0)


@pytest.mark.parametrize(
    ("page", "words"),
    [
        ("vllm:num_requests_running 1\nvllm:num_requests_waiting 1e308\n", "plausible number"),
        ("vllm:num_requests_running 1e308\n", "plausible number"),
        ("vllm:num_requests_running 1\nvllm:generation_tokens_total 1e308\n", "plausible"),
        ("vllm:num_requests_running 1\nvllm:num_requests_waiting NaN\n", "nan"),
        ("vllm:num_requests_running -Inf\n", "-inf"),
    ],
)
async def test_absurd_values_are_an_invalid_page_with_a_clear_detail(
    server: LocalServer, page: str, words: str
) -> None:
    serve(server, page)
    r = await probe_engine(server.context())
    assert not r.success and r.reason is Reason.INVALID_RESPONSE
    assert words in r.detail.lower() and "Overflow" not in r.detail, r.detail
    assert "vllm:num_requests" in r.detail or "vllm:generation" in r.detail


async def test_a_duplicated_series_is_refused_not_summed(server: LocalServer) -> None:
    page = 'vllm:num_requests_running{engine="0"} 3\nvllm:num_requests_running{engine="0"} 3\n'
    serve(server, page)
    r = await probe_engine(server.context())
    assert not r.success and r.reason is Reason.INVALID_RESPONSE
    assert "appears twice" in r.detail and 'engine="0"' in r.detail


async def test_a_valid_page_padded_with_4_mib_of_blank_lines_is_read(server: LocalServer) -> None:
    serve(server, fixture("vllm_v1_dp2.txt") + b"\n" * (4 << 20))
    r = await probe_engine(server.context(checks={"engine": {"max_bytes": 8 << 20}}))
    assert r.success and r.engine is not None and r.engine.running == 5, r.detail


@contextmanager
def counted_calls() -> Iterator[list[int]]:
    """Counts the Python and C function calls made inside the block (a measure of the work
    per line that does not depend on how busy the machine is)."""
    count = [0]

    def profile(frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            count[0] += 1

    sys.setprofile(profile)
    try:
        yield count
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize(
    "padding", [b"\n" * (4 << 20), b" " * (4 << 20), (b"x" * 100 + b"\n") * 40_000]
)
def test_the_work_per_page_does_not_grow_with_lines_that_are_not_ours(padding: bytes) -> None:
    """Blank lines, one endless line, 40,000 foreign lines: a few calls per 64 KiB chunk,
    not a few per line (4 MiB of blank lines held the loop 0.7 s when split line by line)."""
    own = LineFilter(ENGINES["vllm"].names.all())
    own.feed(fixture("vllm_v1_dp2.txt"))
    expected = own.finish()
    page = fixture("vllm_v1_dp2.txt") + padding
    lines = LineFilter(ENGINES["vllm"].names.all())
    chunks = [page[i : i + (64 << 10)] for i in range(0, len(page), 64 << 10)]
    with counted_calls() as calls:
        for chunk in chunks:
            lines.feed(chunk)
        kept = lines.finish()
    assert len(chunks) > 60 and len(expected) == 11  # the loop ran
    assert kept == expected  # the page's own lines, nothing of the padding
    assert calls[0] < 60 * len(chunks), calls[0]


async def test_vllm_deferred_requests_are_read_per_engine(server: LocalServer) -> None:
    by_reason = (
        "# TYPE vllm:num_requests_waiting_by_reason gauge\n"
        'vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 3.0\n'
        'vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="deferred"} 4.0\n'
        'vllm:num_requests_waiting_by_reason{engine="1",model_name="m",reason="deferred"} 0.0\n'
    )
    serve(server, fixture("vllm_v1_dp2.txt") + by_reason.encode())
    r = await probe_engine(server.context(checks={"engine": {"flavour": "vllm"}}))
    assert r.engine is not None and r.engine.waiting == 7  # the server's figure, unchanged
    assert [(u.name, u.deferred) for u in r.engine.engines] == [("0", 4.0), ("1", 0.0)]
