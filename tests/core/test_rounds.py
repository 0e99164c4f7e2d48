"""One round of checks (engine/rounds.py): concurrent, one deadline, the verdict as soon as it
is known; and `llm-heartbeat probe` on top of it as a pipeline uses it (exit codes, durations,
a /v1 URL)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from exporter.config import TargetConfig
from exporter.engine.rounds import Verdict, direct_runner, run_round, verdict_of
from exporter.probes import make_client
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.simulate import FaultSpec, Simulator, SimulatorConfig, run_in_thread

H, M, C = Check.HEALTH, Check.MODELS, Check.CHAT
EXE = [sys.executable, "-m", "exporter.cli"]


def res(check: Check, reason: Reason | None = None, models: tuple[str, ...] = ()) -> ProbeResult:
    status = {None: 200, Reason.LOADING: 503, Reason.CONNECT_ERROR: None}.get(reason, 500)
    return ProbeResult(check, reason is None, 0.01, time.time(), status, reason, models=models)


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        ({}, None),
        ({H: res(H)}, None),
        ({H: res(H, Reason.LOADING)}, Verdict.STARTING),
        ({H: res(H, Reason.CONNECT_ERROR)}, Verdict.UNHEALTHY),
        ({C: res(C, Reason.SERVER_ERROR)}, None),  # /health may yet say "loading"
        ({H: res(H), C: res(C, Reason.TIMEOUT)}, Verdict.UNHEALTHY),
        ({H: res(H), M: res(M), C: res(C)}, Verdict.HEALTHY),
    ],
)
def test_verdict_of(results: dict, verdict: Verdict | None) -> None:
    assert verdict_of((H, M, C), results) == verdict


async def test_the_verdict_does_not_wait_for_a_hung_check() -> None:
    """/health refused decides; the chat completion still hanging is skipped, not awaited."""
    started = []

    async def run(check: Check, model: str | None, left: float) -> ProbeResult:
        started.append(check)
        if check is H:
            return res(H, Reason.CONNECT_ERROR)
        await asyncio.sleep(3600)
        raise AssertionError("never")

    found = await run_round((H, M, C), run, deadline=3600)
    assert found.verdict is Verdict.UNHEALTHY
    assert [r.check for r in found.results] == [H] and set(found.skipped) == {M, C}
    assert set(started) == {H, M}  # chat waited for the model name and was never needed


async def test_chat_asks_for_the_model_the_model_list_named() -> None:
    asked: dict[Check, str | None] = {}

    async def run(check: Check, model: str | None, left: float) -> ProbeResult:
        asked[check] = model
        return res(check, models=("served-model",) if check is M else ())

    found = await run_round((H, M, C), run, deadline=10)
    assert found.verdict is Verdict.HEALTHY and found.model == "served-model"
    assert asked == {H: None, M: None, C: "served-model"}


async def test_without_stop_early_every_check_answers() -> None:
    async def run(check: Check, model: str | None, left: float) -> ProbeResult:
        await asyncio.sleep(0.01 if check is H else 0.05)
        return res(check, Reason.CONNECT_ERROR)

    found = await run_round((H, M, C), run, deadline=10, stop_early=False)
    assert [r.check for r in found.results] == [H, M, C] and found.skipped == []


@pytest.mark.parametrize(
    ("fault", "verdict"),
    [
        (None, Verdict.HEALTHY),
        (FaultSpec(kind="loading", seconds=60), Verdict.STARTING),
        (FaultSpec(kind="health_lies"), Verdict.UNHEALTHY),
        (FaultSpec(kind="garbage"), Verdict.UNHEALTHY),
    ],
)
async def test_rounds_against_the_simulator(
    sim: Simulator, fault: FaultSpec | None, verdict: Verdict
) -> None:
    if fault is not None:
        sim.set_fault(fault)
    target = TargetConfig(
        name="t", url=sim.url, checks={"chat": {"ttft_timeout": 0.5, "timeout": 30}}
    )
    async with make_client() as client:
        found = await run_round((H, M, C), direct_runner(client, target), deadline=30)
    assert found.verdict is verdict, [r.detail for r in found.results]


# ---- the command line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loading_url() -> Iterator[str]:
    with run_in_thread(SimulatorConfig(port=0, ttft_seconds=0.01)) as sim:
        sim.set_fault(FaultSpec(kind="loading", seconds=600))
        yield sim.url


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with run_in_thread(SimulatorConfig(port=0, ttft_seconds=0.01)) as sim:
        yield sim.url


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, "probe", *args], capture_output=True, text=True, timeout=60)


def test_probe_loading_exits_3(loading_url: str) -> None:
    proc = cli(loading_url, "--timeout", "5s")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "STARTING"


def test_probe_takes_durations_and_a_v1_url(sim_url: str) -> None:
    proc = cli(sim_url + "/v1/", "--timeout", "1m", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "using " + sim_url in proc.stderr
    assert '"verdict": "healthy"' in proc.stdout


@pytest.mark.parametrize("bad", ["soon", "0s", "-5"])
def test_probe_bad_timeout_is_a_usage_error(sim_url: str, bad: str) -> None:
    proc = cli(sim_url, "--timeout", bad)
    assert proc.returncode == 2 and "--timeout" in proc.stderr
