"""/probe: one round against the simulator in a fresh registry, the allow-list, the scrape
deadline, debug output, and equivalence with the collector loop for the same target."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import ProbeModule, Settings, TargetConfig
from exporter.server.probe_endpoint import ProbeRefused, deadline_for, is_allowed, target_url
from exporter.simulate import DEFAULT_MODEL, FaultSpec, Simulator, SimulatorConfig
from tests.conftest import free_port
from tests.core.live import running_exporter, samples, scrape, value
from tests.waiting import wait_for

SECRET = "sk-probe-secret-0123456789"


def probe_settings(
    tmp_path: Path,
    *targets: TargetConfig,
    allowed: list[str] | None = None,
    detail: str = "compact",
    **modules: dict,
) -> Settings:
    modules = modules or {"llm": {}}
    return Settings(
        targets=list(targets),
        metrics={"detail": detail},
        default_interval=0.5,
        history_file=tmp_path / "history.jsonl",
        probe={
            "modules": modules,
            "allowed_targets": ["127.0.0.0/8"] if allowed is None else allowed,
        },
    )


async def get(base: str, path: str, **kw) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as c:
        return await c.get(base + path, **kw)


def address(sim: Simulator) -> str:
    return sim.url.removeprefix("http://")


# ---- pure parts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "patterns", "allowed"),
    [
        ("http://10.1.2.3:8000", ["10.0.0.0/8"], True),
        ("http://10.1.2.3:8000", ["192.168.0.0/16"], False),
        ("http://vllm-0.models.svc:8000", ["*.models.svc"], True),
        ("http://vllm-0.models.svc:8000", ["*.models.svc:8000"], True),
        ("http://vllm-0.models.svc:9000", ["*.models.svc:8000"], False),
        ("http://vllm-0.models.svc", ["*.models.svc:80"], True),
        ("https://vllm-0.models.svc", ["*.models.svc:443"], True),
        ("http://evil.example:8000", ["*.models.svc", "10.0.0.0/8"], False),
        ("http://models.svc.evil.example:8000", ["*.models.svc"], False),
        ("http://10.1.2.3:8000", [], False),
        ("http://[::1]:8000", ["::1/128"], True),
        ("http://[::1]:8000", ["127.0.0.0/8"], False),
        ("http://VLLM.Models.SVC:8000", ["vllm.models.svc"], True),
        # a `*` stays within one host label: the module's credentials never leave the zone
        ("http://vllm-a:8000", ["vllm-*:8000"], True),
        ("http://vllm-a.evil.com:8000", ["vllm-*:8000"], False),
        ("http://vllm-a.evil.com:8000", ["vllm-*"], False),
        ("http://a.b.models.svc:8000", ["*.models.svc"], False),
        ("http://vllm-1:8000", ["vllm-?:8000"], True),
        ("http://vllm-1:8080", ["vllm-1:80*0"], True),
    ],
)
def test_allow_list(url: str, patterns: list[str], allowed: bool) -> None:
    assert is_allowed(url, patterns) is allowed


def test_target_url() -> None:
    module = ProbeModule()
    assert target_url("10.0.0.1:8000", module) == "http://10.0.0.1:8000"
    assert target_url("https://h.example:8443/", module) == "https://h.example:8443"
    assert target_url("h:1", ProbeModule(scheme="https")) == "https://h:1"
    for bad in ("", "ftp://h:1", "http://user:pw@h:1", "http://h:1/?x=1", "http://h:99999"):
        with pytest.raises(ProbeRefused):
            target_url(bad, module)


def test_deadline() -> None:
    module = ProbeModule(timeout=30)
    assert deadline_for(module, None, 0.5) == 30
    assert deadline_for(module, "10", 0.5) == 9.5
    assert deadline_for(module, "120", 0.5) == 30
    assert deadline_for(module, "0.3", 0.5) == 0.3  # offset larger than the timeout: ignored
    for bad in ("ten", "-1", "0"):
        with pytest.raises(ProbeRefused):
            deadline_for(module, bad, 0.5)


# ---- against the simulator -------------------------------------------------------------------
async def test_probe_reports_one_round_in_a_fresh_registry(sim: Simulator, tmp_path: Path) -> None:
    async with running_exporter(probe_settings(tmp_path, detail="full")) as (_, base):
        r = await get(base, "/probe", params={"target": address(sim), "module": "llm"})
        assert r.status_code == 200, r.text
        text = r.text
        name = address(sim)  # the target label: derived from host:port
        assert value(text, "probe_success") == 1.0
        assert (value(text, "probe_duration_seconds") or 0) > 0
        for check in ("health", "models", "chat"):
            assert value(text, "llm_probe_success", target=name, check=check) == 1.0
            assert value(text, "llm_probes_total", target=name, check=check) == 1.0
        assert value(text, "llm_target_up", target=name) == 1.0
        assert value(text, "llm_target_info", target=name, url=sim.url, model=DEFAULT_MODEL) == 1.0
        assert (value(text, "llm_probe_tokens_total", target=name, kind="completion") or 0) > 0
        # a fresh registry: no process metrics, no state carried over between rounds
        assert not any(f.name.startswith("process_") for f in text_string_to_metric_families(text))
        r2 = await get(base, "/probe", params={"target": address(sim), "module": "llm"})
        assert value(r2.text, "llm_probes_total", target=name, check="chat") == 1.0
        # the loop probes nothing: /probe did not add a target
        assert value(await scrape(base), "llm_exporter_targets") == 0.0
        counted = value(
            await scrape(base), "llm_probe_endpoint_requests_total", module="llm", result="success"
        )
        assert counted == 2.0
    assert sim.stats.chat_completions == 2


async def test_probe_failure_names_the_reason(sim: Simulator, tmp_path: Path) -> None:
    sim.set_fault(FaultSpec(kind="wrong_answer"))
    async with running_exporter(probe_settings(tmp_path)) as (_, base):
        r = await get(
            base, "/probe", params={"target": address(sim), "module": "llm", "name": "qwen"}
        )
        text = r.text
        assert r.status_code == 200
        assert value(text, "probe_success") == 0.0
        assert value(text, "llm_probe_success", target="qwen", check="health") == 1.0
        assert value(text, "llm_probe_success", target="qwen", check="chat") == 0.0
        assert (
            value(
                text,
                "llm_probe_failures_total",
                target="qwen",
                check="chat",
                reason="validation_failed",
            )
            == 1.0
        )
        # one round decides: the state is already the verdict
        assert value(text, "llm_target_state", target="qwen", state="degraded") == 1.0


async def test_scrape_timeout_header_bounds_the_round(sim: Simulator, tmp_path: Path) -> None:
    sim.set_fault(FaultSpec(kind="hang"))
    settings = probe_settings(tmp_path, llm={"timeout": 120})
    async with running_exporter(settings) as (_, base):
        r = await get(
            base,
            "/probe",
            params={"target": address(sim), "module": "llm", "debug": "true"},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
        )
        assert r.status_code == 200
        assert "deadline=1s" in r.text  # 1.5 s minus the 0.5 s offset
        assert "no complete answer within 1s" in r.text
        metrics = r.text.split("Metrics that would have been returned:\n", 1)[1]
        metrics = metrics.split("\n\nModule configuration:", 1)[0]
        name = address(sim)
        assert value(metrics, "probe_success") == 0.0
        assert (
            value(
                metrics, "llm_probe_failures_total", target=name, check="health", reason="timeout"
            )
            == 1.0
        )
        # the later checks had no time left: failed as timeouts, not run
        assert (
            value(metrics, "llm_probe_failures_total", target=name, check="chat", reason="timeout")
            == 1.0
        )
        bad = await get(
            base,
            "/probe",
            params={"target": address(sim), "module": "llm"},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "soon"},
        )
        assert bad.status_code == 400


async def test_allow_list_refuses_and_does_not_connect(sim: Simulator, tmp_path: Path) -> None:
    settings = probe_settings(tmp_path, allowed=["*.models.svc.cluster.local", "10.0.0.0/8"])
    async with running_exporter(settings) as (_, base):
        r = await get(base, "/probe", params={"target": address(sim), "module": "llm"})
        assert r.status_code == 403
        assert "allowed_targets" in r.text
        r = await get(
            base, "/probe", params={"target": f"http://u:{SECRET}@10.0.0.1:1", "module": "llm"}
        )
        assert r.status_code == 400 and SECRET not in r.text
        r = await get(base, "/probe", params={"target": address(sim), "module": "nope"})
        assert r.status_code == 400 and "llm" in r.text
        text = await scrape(base)
        assert (
            value(text, "llm_probe_endpoint_requests_total", module="llm", result="refused") == 1.0
        )
        assert (
            value(text, "llm_probe_endpoint_requests_total", module="unknown", result="bad_request")
            == 1.0
        )
    assert sim.stats.connections == 0


async def test_debug_shows_log_and_metrics_without_secrets(tmp_path: Path) -> None:
    s = Simulator(
        SimulatorConfig(port=0, ttft_seconds=0.01, token_interval_seconds=0.002, api_key=SECRET)
    )
    await s.start()
    try:
        settings = probe_settings(
            tmp_path, llm={"api_key": SECRET, "headers": {"X-Api-Key": SECRET + "-hdr"}}
        )
        async with running_exporter(settings) as (_, base):
            r = await get(
                base, "/probe", params={"target": address(s), "module": "llm", "debug": "true"}
            )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "Logs for the probe:" in r.text
        assert "check=chat result=ok" in r.text
        assert "probe succeeded" in r.text
        assert "probe_success 1.0" in r.text
        assert "Module configuration:" in r.text and "**********" in r.text
        assert SECRET not in r.text  # neither the api_key nor the header value
        assert "X-Api-Key: <redacted>" in r.text
    finally:
        await s.stop()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[int]]]:
    """Accepts connections and never answers (a hung server); keeps the largest number of
    connections open at once."""
    held: list[asyncio.StreamWriter] = []
    count = [0]
    open_now = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_now[0] += 1
        count[0] = max(count[0], open_now[0])
        held.append(writer)
        try:
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the client gives up
        finally:
            open_now[0] -= 1

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield f"127.0.0.1:{port}", count
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_probe_floods_cannot_starve_the_scheduled_probes(
    sim: Simulator, tmp_path: Path
) -> None:
    """64 clients loop on /probe against a target that never answers: the static target's own
    probes keep their schedule and it stays up; /probe sheds what exceeds its budget."""
    static = TargetConfig(
        name="static", url=sim.url, thresholds={"failures_to_down": 2, "retry_interval": 0.2}
    )
    settings = probe_settings(tmp_path, static, llm={"timeout": "3s"})
    settings = settings.model_copy(update={"max_concurrency": 4})
    async with silent_server() as (hung, connections), running_exporter(settings) as (_, base):

        async def up() -> bool:
            return value(await scrape(base), "llm_target_up", target="static") == 1.0

        await wait_for(up)
        before = value(
            await scrape(base), "llm_probe_duration_seconds_count", target="static", check="health"
        )
        stop = asyncio.get_running_loop().time() + 4.0
        answers: list[int] = []

        async def flood() -> None:
            async with httpx.AsyncClient(timeout=10) as c:
                while asyncio.get_running_loop().time() < stop:
                    r = await c.get(base + "/probe", params={"target": hung, "module": "llm"})
                    answers.append(r.status_code)

        async def watch() -> list[float]:
            seen = []
            while asyncio.get_running_loop().time() < stop:
                seen.append(value(await scrape(base), "llm_target_up", target="static") or 0.0)
                await asyncio.sleep(0.3)
            return seen

        results = await asyncio.gather(watch(), *(flood() for _ in range(64)))
        seen = results[0]
        text = await scrape(base)
        after = value(text, "llm_probe_duration_seconds_count", target="static", check="health")
    assert seen and all(v == 1.0 for v in seen)  # never down while /probe was flooded
    assert before is not None and after is not None and after - before >= 3
    assert 503 in answers  # the budget (16 by default) was exceeded and shed
    assert connections[0] <= 16 + 1  # /probe never held more connections than its budget
    assert value(text, "llm_probe_endpoint_requests_total", module="llm", result="busy")


async def test_probe_token_is_required_when_configured(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMHB_TEST_PROBE_TOKEN", "tok-0123456789")
    settings = probe_settings(tmp_path)
    settings = settings.model_copy(
        update={"probe": settings.probe.model_copy(update={"token_env": "LLMHB_TEST_PROBE_TOKEN"})}
    )
    params = {"target": address(sim), "module": "llm"}
    async with running_exporter(settings) as (_, base):
        denied = await get(base, "/probe", params=params)
        wrong = await get(base, "/probe", params=params, headers={"Authorization": "Bearer x"})
        ok = await get(
            base, "/probe", params=params, headers={"Authorization": "Bearer tok-0123456789"}
        )
    assert denied.status_code == 401 and wrong.status_code == 401
    assert ok.status_code == 200 and "probe_success 1.0" in ok.text


# ---- /probe equals the loop ------------------------------------------------------------------
# present only when measurable (e.g. decode speed needs two tokens in separate reads)
TIMING_DEPENDENT = ("llm_probe_output_tokens_per_second", "llm_probe_max_stall_seconds")
# the loop's cadence, which a one-shot /probe does not have: chats that rested (engine/thrift.py)
LOOP_ONLY = ("llm_probe_skipped",)
COMPARED = (
    "llm_probe_success",
    "llm_probe_http_status_code",
    "llm_target_info",
    "llm_target_up",
    "llm_probe_failures_total",
)


def series(text: str) -> set[tuple[str, frozenset]]:
    """The per-target series of the monitor's collector (what the loop exports per target)."""
    return {
        (n, labels)
        for (n, labels) in samples(text)
        if n.startswith(("llm_target_", "llm_probe_"))
        and not n.startswith(TIMING_DEPENDENT)
        and not n.startswith("llm_probe_endpoint_")
        and not n.startswith(LOOP_ONLY)
    }


def compared(text: str) -> dict:
    """The compared values; /probe is one round and leaves out the engine check."""
    return {
        k: v
        for k, v in samples(text).items()
        if k[0] in COMPARED and ("check", "engine") not in k[1]
    }


@pytest.mark.parametrize("fault", [None, "wrong_answer"])
async def test_probe_equals_loop_for_one_target(
    sim: Simulator, tmp_path: Path, fault: str | None
) -> None:
    if fault:
        sim.set_fault(FaultSpec(kind=fault))
    target = TargetConfig(name="qwen", url=sim.url, thresholds={"failures_to_down": 1})
    async with running_exporter(probe_settings(tmp_path, target)) as (_, base):

        async def first_round() -> str | None:
            text = await scrape(base)
            done = all(
                value(text, "llm_probe_duration_seconds_count", target="qwen", check=c)
                for c in ("health", "models", "chat")
            )
            return (
                text
                if done
                and value(text, "llm_target_info", target="qwen", url=sim.url, model=DEFAULT_MODEL)
                else None
            )

        loop_text = await wait_for(first_round)
        r = await get(
            base, "/probe", params={"target": address(sim), "module": "llm", "name": "qwen"}
        )
    probe_text = r.text
    # /probe is one round: it leaves out the engine check, whose view needs samples over time
    loop_series = {
        s
        for s in series(loop_text)
        if ("target", "qwen") in s[1] and ("check", "engine") not in s[1]
    }
    assert series(probe_text) == loop_series
    assert compared(probe_text) == compared(loop_text)
    if fault is None:
        assert value(probe_text, "llm_target_up", target="qwen") == 1.0
    else:
        assert (
            value(
                probe_text,
                "llm_probe_failures_total",
                target="qwen",
                check="chat",
                reason="validation_failed",
            )
            == 1.0
        )
