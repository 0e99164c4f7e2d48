"""Detection by fault mode: the exporter's collector loop (real probes over loopback) against
simulated vLLM servers, each in its own thread, whose failure mode is switched while they run.

For each profile (the shipped defaults; examples/fast-detection.yml) and each fault mode, at a
random phase of the probe schedules: fault -> the right state, repair -> `up`, and every
transition on the way back. A noise run counts false transitions while 5 % of the chat
completions fail at random. Figures, not assertions: `make test` does not run this.

    python -m bench.detection --matrix [--runs 3] [--noise-minutes 10] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench.probecost import client_load
from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.engine.scheduler import Scheduler
from exporter.engine.state import State, Transition
from exporter.probes import make_client
from exporter.simulate import DEFAULT_MODEL, FaultSpec, Simulator, SimulatorConfig, run_in_thread

__all__ = ["MODES", "MatrixRun", "NoiseRun", "cli", "render_matrix", "run_matrix"]

SECTION = "## Detection by fault mode"
FAST_FILE = Path(__file__).resolve().parent.parent / "examples" / "fast-detection.yml"

# fault mode -> (the simulator's fault, the state it must lead to)
MODES: dict[str, tuple[FaultSpec, State]] = {
    "refused": (FaultSpec(kind="down"), State.DOWN),
    "accepts, never answers": (FaultSpec(kind="hang"), State.DOWN),
    "/health 200, chat hung": (FaultSpec(kind="health_lies"), State.DEGRADED),
    "500 everywhere": (FaultSpec(kind="server_error"), State.DOWN),
    "HTML instead of a completion": (FaultSpec(kind="garbage"), State.DEGRADED),
    "loading (503)": (FaultSpec(kind="loading", seconds=3600), State.STARTING),
    "/v1/models lists another model": (
        FaultSpec(kind="model_swap", model="other/model"),
        State.DEGRADED,
    ),
    # deep queue, KV near full, generation advancing, answers after 40 s: busy, not broken
    "overloaded (answers after 40 s)": (FaultSpec(kind="overload", seconds=40), State.OVERLOADED),
    "engine stalled (/health 200, counters frozen)": (
        FaultSpec(kind="stall", after_tokens=0),
        State.DEGRADED,
    ),
}


@dataclass
class MatrixRun:
    profile: str
    mode: str
    to_state: float | None = None  # fault -> expected state, seconds
    to_up: float | None = None  # repair -> up, seconds
    way_back: list[str] = field(default_factory=list)  # transitions after the repair
    states: list[str] = field(default_factory=list)  # every state entered during the fault
    error: str = ""


@dataclass
class NoiseRun:
    profile: str
    targets: int
    seconds: float
    failed_chats: int = 0
    false_transitions: list[str] = field(default_factory=list)


def profile_settings(profile: str, urls: dict[str, str]) -> Settings:
    """One target per URL with the profile's settings (the fast one read from its example),
    with the model configured: a server that lists another model is then wrong."""
    if profile == "default":
        targets = [TargetConfig(name=n, url=u, model=DEFAULT_MODEL) for n, u in urls.items()]
        return Settings(targets=targets)
    data = yaml.safe_load(FAST_FILE.read_text())
    template = {k: v for k, v in data["targets"][0].items() if k not in ("name", "url")}
    template["model"] = DEFAULT_MODEL
    targets = [TargetConfig(name=n, url=u, **template) for n, u in urls.items()]
    return Settings(default_interval=data["default_interval"], targets=targets)


@contextlib.contextmanager
def simulators(names: list[str], seed: int | None = None) -> Iterator[dict[str, Simulator]]:
    with contextlib.ExitStack() as stack:
        sims = {}
        for i, name in enumerate(names):
            cfg = SimulatorConfig(port=0, seed=(seed or 0) + i)
            sims[name] = stack.enter_context(run_in_thread(cfg))
        yield sims


class Loop:
    """The exporter's collector loop over some targets, with every transition kept."""

    def __init__(self, settings: Settings) -> None:
        self.monitor = Monitor(settings.model_copy(update={"history_file": None}), sinks=[])
        self.seen: list[Transition] = []
        self.monitor.sinks.append(self.seen.append)

    def state(self, name: str) -> State:
        return self.monitor.targets[name].status.state

    def since(self, name: str, t0: float) -> list[Transition]:
        return [t for t in self.seen if t.target == name and t.time >= t0]

    async def wait(self, name: str, states: set[State], timeout: float) -> Transition | None:
        end = time.time() + timeout
        while time.time() < end:
            if self.state(name) in states:
                return next((t for t in reversed(self.seen) if t.target == name), None)
            await asyncio.sleep(0.02)
        return None


async def one_mode(
    loop: Loop, sim: Simulator, profile: str, mode: str, interval: float
) -> MatrixRun:
    spec, expected = MODES[mode]
    run = MatrixRun(profile, mode)
    name = sim_name(mode)
    if await loop.wait(name, {State.UP}, 120) is None:
        run.error = f"never up before the fault (state {loop.state(name)})"
        return run
    await asyncio.sleep(random.uniform(0, interval))  # a random phase of the schedules
    t_fault = time.time()
    sim.set_fault(spec)
    overloaded = spec.kind in ("overloaded", "overload")
    reached = await loop.wait(name, {expected}, 60 if overloaded else 150)
    if reached is not None and loop.state(name) is expected:
        run.to_state = reached.time - t_fault
    elif not overloaded:
        run.error = f"not {expected} within 150 s (state {loop.state(name)})"
    await asyncio.sleep(60 if overloaded else 10)  # stale failures pile up, as in an outage
    run.states = [t.to_state.value for t in loop.since(name, t_fault)]
    t_repair = time.time()
    sim.clear_faults()
    back = await loop.wait(name, {State.UP}, 120)
    if back is not None and loop.state(name) is State.UP:
        run.to_up = back.time - t_repair if back.time >= t_repair else 0.0
    else:
        run.error = run.error or f"not up within 120 s of the repair ({loop.state(name)})"
    await asyncio.sleep(3)  # anything after up belongs to the way back too
    run.way_back = [f"{t.from_state}->{t.to_state}" for t in loop.since(name, t_repair)]
    return run


def sim_name(mode: str) -> str:
    return "m" + str(list(MODES).index(mode))


async def run_profile(profile: str, runs: int, load: int = 0) -> list[MatrixRun]:
    """All fault modes at once (each its own simulator and target), `runs` times; `load`:
    users streaming completions to every simulator all along (a busy server: the synthetic
    chat rests while their requests advance, docs/probe-cost.md)."""
    out: list[MatrixRun] = []
    names = [sim_name(m) for m in MODES]
    for _ in range(runs):
        with simulators(names) as sims:
            settings = profile_settings(profile, {n: s.url for n, s in sims.items()})
            interval = max(
                settings.interval_for(settings.targets[0], c) for c in ("health", "chat")
            )
            loop = Loop(settings)
            async with contextlib.AsyncExitStack() as stack, make_client() as client:
                for sim in sims.values() if load else ():
                    await stack.enter_async_context(client_load(sim.url, load, 300))
                scheduler = Scheduler(loop.monitor, client)
                scheduler.start()
                try:
                    out += await asyncio.gather(
                        *(one_mode(loop, sims[sim_name(m)], profile, m, interval) for m in MODES)
                    )
                finally:
                    await scheduler.stop()
        for r in out[-len(MODES) :]:
            print(r, flush=True)
    return out


async def run_noise(profile: str, targets: int, seconds: float) -> NoiseRun:
    """`targets` servers failing 5 % of their completions at random for `seconds`."""
    names = [f"noise{i}" for i in range(targets)]
    result = NoiseRun(profile, targets, seconds)
    with simulators(names, seed=random.randrange(2**31)) as sims:
        for sim in sims.values():
            sim.set_fault(FaultSpec(kind="error_rate", rate=0.05))
        loop = Loop(profile_settings(profile, {n: s.url for n, s in sims.items()}))
        async with make_client() as client:
            scheduler = Scheduler(loop.monitor, client)
            scheduler.start()
            try:
                for name in names:
                    await loop.wait(name, {State.UP}, 120)
                t0 = time.time()
                await asyncio.sleep(seconds)
                for name in names:
                    rt = loop.monitor.targets[name]
                    result.failed_chats += sum(
                        n for (c, _), n in rt.failures.items() if c.value == "chat"
                    )
                    result.false_transitions += [
                        f"{name}: {t.from_state}->{t.to_state} ({t.reason})"
                        for t in loop.since(name, t0)
                    ]
            finally:
                await scheduler.stop()
    print(result, flush=True)
    return result


async def run_matrix(
    profiles: list[str], runs: int, noise_targets: int, noise_seconds: float, load: int = 0
) -> tuple[list[MatrixRun], list[NoiseRun]]:
    """The matrix of every profile, with the noise runs alongside (they only need time)."""
    noise = [run_noise(p, noise_targets, noise_seconds) for p in profiles if noise_seconds > 0]
    noise_task = asyncio.gather(*noise)
    matrix: list[MatrixRun] = []
    for p in profiles:
        matrix += await run_profile(p, runs, load)
    return matrix, list(await noise_task)


# ----------------------------------------------------------------------------- report


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} / {max(values):.1f} s"


def render_matrix(
    matrix: list[MatrixRun], noise: list[NoiseRun], host: str, when: str, command: str
) -> str:
    profiles = list(dict.fromkeys(r.profile for r in matrix))
    head = "| fault | expected | " + " | ".join(
        f"{p}: fault → state | {p}: repair → up | {p}: way back" for p in profiles
    )
    lines = [
        SECTION,
        "",
        f"Measured {when} on {host}, with `{command}`.",
        "",
        "The exporter's collector loop (real probes over loopback, aiohttp transport) against",
        "simulated vLLM servers in their own threads, one per fault mode, the fault switched on",
        "at a random phase of the probe schedules, held 10 s (60 s for overloaded), then",
        "switched off. Targets name their model. *default* = the exporter's defaults (every",
        "check every 15 s, chat `ttft_timeout` 8 s); *fast* = `examples/fast-detection.yml`.",
        "Times are median / max over the runs; *way back* lists every transition after the",
        "repair. Fault → webhook adds at most one scrape and one evaluation to fault → state",
        "(5 + 5 s default, 1 + 1 s fast: the detection rules have no `for:`).",
        "",
        head + " |",
        "|---|---|" + "---|---|---|" * len(profiles),
    ]
    for mode, (_, expected) in MODES.items():
        cells = []
        for p in profiles:
            rs = [r for r in matrix if r.profile == p and r.mode == mode]
            to_state = [r.to_state for r in rs if r.to_state is not None]
            to_up = [r.to_up for r in rs if r.to_up is not None]
            backs = sorted({" → ".join(r.way_back) or "none" for r in rs})
            errors = [r.error for r in rs if r.error]
            if mode.startswith("overloaded"):
                seen = sorted({s for r in rs for s in r.states}) or ["up"]
                cells += [
                    f"{_fmt(to_state)} (states: {', '.join(seen)})"
                    + (" (**down!**)" if "down" in seen else ""),
                    _fmt(to_up),
                ]
            else:
                cells += [_fmt(to_state) + (f" ({len(errors)} failed)" if errors else ""),
                          _fmt(to_up)]  # fmt: skip
            cells.append("; ".join(backs))
        want = "overloaded, never down" if mode.startswith("overloaded") else expected.value
        lines.append(f"| {mode} | {want} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in noise:
        lines.append(
            f"Noise, {n.profile} profile: {n.targets} targets x {n.seconds / 60:.0f} min with 5 %"
            f" of completions failing at random ({n.failed_chats} failed chat probes): "
            f"**{len(n.false_transitions)} false transitions**"
            + (f" ({'; '.join(n.false_transitions[:5])})" if n.false_transitions else "")
            + "."
        )
    runs = {p: len([r for r in matrix if r.profile == p]) // len(MODES) for p in profiles}
    lines += ["", "Runs per mode: " + ", ".join(f"{p} {n}" for p, n in runs.items()) + "."]
    return "\n".join(lines) + "\n"


def cli(
    args: argparse.Namespace,
    argv: list[str] | None,
    machine: Callable[[], str],
    merge: Callable[[str | None, str, str], str],
) -> int:
    """`python -m bench.detection --matrix ...` (bench/detection.py parses the arguments)."""
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        matrix = [MatrixRun(**r) for r in saved["matrix"]]
        noise = [NoiseRun(**n) for n in saved["noise"]]
        host, when, command = saved["machine"], saved["date"], saved["command"]
    else:
        names = args.profile or ["default", "fast"]
        matrix, noise = asyncio.run(
            run_matrix(names, args.runs, args.noise_targets, args.noise_minutes * 60, args.load)
        )
        words = argv if argv is not None else sys.argv[1:]
        command = "python -m bench.detection " + " ".join(words)
        when = datetime.now(UTC).strftime("%Y-%m-%d")
        host = machine()
    section = render_matrix(matrix, noise, host, when, command.strip())
    print(section)
    if args.json:
        raw = {"machine": host, "date": when, "command": command.strip()}
        raw |= {"matrix": [asdict(r) for r in matrix], "noise": [asdict(n) for n in noise]}
        args.json.write_text(json.dumps(raw, indent=2))
    if args.write:
        existing = args.write.read_text() if args.write.exists() else None
        args.write.write_text(merge(existing, section, SECTION))
        print(f"wrote the section into {args.write}")
    return 0
