"""Detection and recovery benchmark: how fast is the loop, and how often does noise page?

    python -m bench.detection                        # both profiles, table on stdout
    python -m bench.detection --runs 5 --write BENCHMARKS.md

For each profile it runs the crash scenario of the end-to-end tests (tests/e2e/) again and
again, each run on a fresh stack (simulated vLLM under a supervisor, the exporter, Debian's
Prometheus and Alertmanager with the shipped rules and routes and their shipped timings), and
measures from the moment the server dies:

  fault -> exporter state down      (the exporter's transition history, exact)
  fault -> alert firing             (the first firing sample of ALERTS in Prometheus's TSDB)
  fault -> webhook received         (the relay in front of the recovery receiver)
  webhook -> target up again        (the exporter's transition history)

Then one run with random noise (5 % of completions fail, random seeds, several targets) counts
false alerts (LLMTargetDown/LLMInferenceDegraded firing) and restarts.

Figures, not assertions: `make test` does not run this.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.procs import wait_until
from tests.e2e.stack import Profile, Stack, TargetSpec, missing_binaries

__all__ = ["PROFILES", "RunResult", "main", "merge_section", "render_section"]

SECTION = "## Detection and recovery"
GOAL_SECONDS = 10.0
RECOVERY_ALERTS = ("LLMTargetDown", "LLMInferenceDegraded")

# What an operator gets out of the box (prometheus.yml, rules/default/, the exporter's defaults)
# and with the fast profile (prometheus-fast.yml, rules/fast/, the exporter as in
# examples/fast-detection.yml: /health every 1 s, chat every 3 s with a 2 s first-token
# deadline, models every 5 s, failures confirmed every 0.5 s). Alertmanager and the recovery rails stay as shipped.
PROFILES: dict[str, Profile] = {
    "default": Profile(
        name="default",
        prometheus_file="prometheus.yml",
        interval=None,
        exporter={},
        thresholds={},
        checks={},
        rails={},
        am_timings=None,
    ),
    "fast": Profile(
        name="fast",
        prometheus_file="prometheus-fast.yml",
        interval=None,
        exporter={"default_interval": 5.0},
        thresholds={"retry_interval": 0.5},
        checks={  # as examples/fast-detection.yml
            "health": {"interval": 1.0, "timeout": 2.0},
            "chat": {"interval": 3.0, "timeout": 10.0, "ttft_timeout": 2.0, "chunk_timeout": 2.0},
        },
        rails={},
        am_timings=None,
    ),
}


@dataclass
class RunResult:
    profile: str
    down: float | None = None
    firing: float | None = None
    webhook: float | None = None
    up_again: float | None = None
    error: str = ""


@dataclass
class NoiseResult:
    profile: str
    targets: int
    seconds: float
    failed_probes: int = 0
    false_alerts: int = 0
    restarts: int = 0
    alerts: list[str] = field(default_factory=list)


def _first_after(times: list[float], t0: float) -> float | None:
    later = [t for t in times if t >= t0]
    return min(later) - t0 if later else None


def _hook_times(stack: Stack, target: str) -> list[float]:
    out = []
    for post in stack.webhooks(target):
        for alert in post.json().get("alerts", []):
            if alert.get("status") == "firing" and alert["labels"].get("alertname") in (
                RECOVERY_ALERTS
            ):
                out.append(post.at)
                break
    return out


def crash_run(profile: Profile, workdir: Path, timeout: float) -> RunResult:
    """One crash on a fresh stack; all four intervals, or the error that stopped the run."""
    result = RunResult(profile.name)
    stack = Stack(workdir, [TargetSpec("bench")], profile)
    try:
        stack.start(timeout=120)
        # a random phase against the probe, scrape and evaluation schedules
        interval = float(profile.exporter.get("default_interval", 15.0))
        time.sleep(random.uniform(0, interval))
        sim = stack.sims["bench"]
        t0 = time.time()
        sim.crash()
        hooks = wait_until(lambda: _hook_times(stack, "bench"), timeout, "the webhook", 0.05)
        wait_until(
            lambda: any(t["to"] == "up" for t in stack.transitions("bench", since=min(hooks))),
            timeout,
            "the target up again",
            0.1,
        )
        downs = [t["time"] for t in stack.transitions("bench", t0) if t["to"] == "down"]
        ups = [t["time"] for t in stack.transitions("bench", min(hooks)) if t["to"] == "up"]
        result.down = _first_after(downs, t0)
        result.firing = _first_after(stack.firing_samples("LLMTargetDown", "bench", t0), t0)
        result.webhook = min(hooks) - t0
        result.up_again = min(ups) - min(hooks)
    except Exception as exc:  # a run that fails is reported, not fatal for the others
        result.error = str(exc).splitlines()[0][:200]
    finally:
        stack.stop()
    return result


def noise_run(profile: Profile, workdir: Path, targets: int, seconds: float) -> NoiseResult:
    """Several targets whose completions fail at random (5 %) for `seconds`: count pages."""
    rng = random.SystemRandom()
    specs = [
        TargetSpec(
            f"noise-{i}",
            sim_args=(
                "--fault",
                "error_rate:rate=0.05,status=503",
                "--seed",
                str(rng.randrange(2**31)),
            ),
        )
        for i in range(targets)
    ]
    result = NoiseResult(profile.name, targets, seconds)
    stack = Stack(workdir, specs, profile)
    try:
        stack.start(timeout=120)
        t0 = time.time()
        time.sleep(seconds)
        for spec in specs:
            for name in stack.alert_history(spec.name, t0):
                alertname, state = name.split(":")
                if state == "firing" and alertname in RECOVERY_ALERTS:
                    result.alerts.append(f"{spec.name}:{alertname}")
            result.restarts += stack.sims[spec.name].restarts()
            result.failed_probes += int(
                stack.metric("llm_probe_failures_total", target=spec.name) or 0
            )
        result.false_alerts = len(result.alerts)
    finally:
        stack.stop()
    return result


# ----------------------------------------------------------------------------- report


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} s / {max(values):.1f} s"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.findall(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[0])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, IndexError):
        pass

    def version(binary: str) -> str:
        path = shutil.which(binary)
        if path is None:
            return "missing"
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        m = re.search(r"version (\S+)", out.stdout + out.stderr)
        return m.group(1) if m else "?"

    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; Prometheus {version('prometheus')}, "
        f"Alertmanager {version('prometheus-alertmanager')}"
    )


def render_section(
    runs: list[RunResult], noise: list[NoiseResult], host: str, when: str, command: str
) -> str:
    profiles = list(dict.fromkeys([r.profile for r in runs] + [n.profile for n in noise]))
    rows = [
        ("fault → exporter state down", "down"),
        ("fault → alert firing in Prometheus", "firing"),
        ("fault → webhook received", "webhook"),
        ("webhook → target up again", "up_again"),
    ]
    head = "| median / max | " + " | ".join(f"{p} profile" for p in profiles) + " |"
    lines = [
        SECTION,
        "",
        f"Measured {when} on {host}, with `{command}`.",
        "",
        "The crash scenario of the end-to-end tests, each run on a fresh stack: a simulated vLLM",
        "server under a supervisor, the exporter with its recovery receiver (a `command` action",
        "that restarts the server), Debian's Prometheus and Alertmanager with the shipped rules,",
        "routes and timings. Profiles: *default* = `prometheus/prometheus.yml` + `rules/default/`",
        "+ the exporter's defaults (every check every 15 s, failures confirmed every 1 s);",
        "*fast* = `prometheus-fast.yml` + `rules/fast/` + the exporter as in",
        "`examples/fast-detection.yml` (health every 1 s, chat every 3 s). Times are from the",
        "moment the server process died, with a random phase against the probe, scrape and",
        "evaluation schedules.",
        "",
        head,
        "|---|" + "---|" * len(profiles),
    ]
    for label, attr in rows:
        cells = []
        for p in profiles:
            values = [getattr(r, attr) for r in runs if r.profile == p]
            cells.append(_fmt([v for v in values if v is not None]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for p in profiles:
        n = next((x for x in noise if x.profile == p), None)
        cells.append(
            "n/a"
            if n is None
            else f"{n.false_alerts} alerts, {n.restarts} restarts ({n.targets} targets x "
            f"{n.seconds / 60:.0f} min, {n.failed_probes} failed probes)"
        )
    lines.append(
        "| false alerts with random noise (5 % of completions fail) | " + " | ".join(cells) + " |"
    )
    counts = []
    for p in profiles:
        ok = [r for r in runs if r.profile == p and not r.error]
        failed = [r for r in runs if r.profile == p and r.error]
        counts.append(f"{p}: {len(ok)} runs" + (f" ({len(failed)} failed)" if failed else ""))
    lines += ["", "Runs: " + "; ".join(counts) + ".", "", *NOTES]
    fast = [r.webhook for r in runs if r.profile == "fast" and r.webhook is not None]
    if fast:
        met = sum(1 for v in fast if v <= GOAL_SECONDS)
        lines += [
            "",
            f"Fast profile against the goal: fault → webhook within {GOAL_SECONDS:g} s in {met} of"
            f" {len(fast)} runs (1 s scrape and evaluation, no `for:`; see prometheus/README.md"
            " for the trade-off).",
        ]
    return "\n".join(lines) + "\n"


NOTES = [
    "Where the time goes: the exporter needs the next probe of the failing check (up to one",
    "probe interval) plus `failures_to_down - 1` confirming re-probes (`retry_interval` apart;",
    "a timeout's confirmations run together, at once); Prometheus needs the next scrape and",
    "the next rule evaluation to see `down` (5 s each in the default profile, 1 s in the fast",
    "one); the detection rules add no `for:` (the exporter has confirmed the state already);",
    "Alertmanager's recovery route has `group_wait: 0s`, so the webhook follows the firing",
    "alert within milliseconds. After the webhook, the receiver re-probes, runs the restart",
    "and the exporter sees the server answer again about a second later (the simulator starts",
    "in well under a second; a real vLLM spends minutes loading weights, and stays `starting`,",
    "not `down`, meanwhile). Goals: fault → webhook within 45 s (default) and 10 s (fast).",
]


def merge_section(existing: str | None, section: str, heading: str = SECTION) -> str:
    """Replace our section (up to the next `## ` heading) or append it; keep everything else."""
    if not existing:
        return "# Benchmarks\n\n" + section
    start = existing.find(heading)
    if start < 0:
        return existing.rstrip("\n") + "\n\n" + section
    nxt = existing.find("\n## ", start + len(heading))
    tail = "" if nxt < 0 else existing[nxt + 1 :]
    merged = existing[:start] + section
    return merged + ("\n" + tail if tail else "")


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES),
                        help="profile to measure (repeatable; default: both)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="crash runs per profile (5)")
    parser.add_argument("--noise-targets", type=int, default=8, help="noisy targets (8)")
    parser.add_argument("--noise-seconds", type=float, default=180.0,
                        help="length of the noise run per profile (180)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300.0, help="per-run timeout (300 s)")
    parser.add_argument("--write", type=Path, help="merge the section into this Markdown file")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON")
    parser.add_argument("--from-json", type=Path,
                        help="no runs: render the results saved by an earlier --json")  # fmt: skip
    parser.add_argument("--matrix", action="store_true",
                        help="the fault-mode matrix (bench/faultmatrix.py) instead of the "
                        "crash runs on full stacks")  # fmt: skip
    parser.add_argument("--load", type=int, default=0,
                        help="with --matrix: users streaming to every server all along (0)")  # fmt: skip
    parser.add_argument("--noise-minutes", type=float, default=10.0,
                        help="with --matrix: length of the noise run (10)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.matrix:
        from bench.faultmatrix import cli

        return cli(args, argv, machine, merge_section)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        runs = [RunResult(**r) for r in saved["runs"]]
        noise = [NoiseResult(**n) for n in saved["noise"]]
        section = render_section(runs, noise, saved["machine"], saved["date"], saved["command"])
        print(section)
        if args.write:
            existing = args.write.read_text() if args.write.exists() else None
            args.write.write_text(merge_section(existing, section))
            print(f"wrote the section into {args.write}")
        return 0
    missing = missing_binaries()
    if missing:
        print(f"missing: {', '.join(missing)} (Debian packages; `make deb-test`)", file=sys.stderr)
        return 2
    names = args.profile or ["default", "fast"]
    runs: list[RunResult] = []
    noise: list[NoiseResult] = []
    with tempfile.TemporaryDirectory(prefix="llmhb-detection-") as tmp:
        for name in names:
            profile = PROFILES[name]
            for i in range(args.runs):
                r = crash_run(profile, Path(tmp) / f"{name}-{i}", args.timeout)
                runs.append(r)
                shown = {
                    k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(r).items()
                }
                print(json.dumps(shown), flush=True)
            if args.noise_seconds > 0:
                n = noise_run(profile, Path(tmp) / f"{name}-noise", args.noise_targets,
                              args.noise_seconds)  # fmt: skip
                noise.append(n)
                print(json.dumps(asdict(n)), flush=True)
    command = "python -m bench.detection " + " ".join(argv if argv is not None else sys.argv[1:])
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    host = machine()
    section = render_section(runs, noise, host, when, command.strip())
    print()
    print(section)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": host,
                    "date": when,
                    "command": command.strip(),
                    "runs": [asdict(r) for r in runs],
                    "noise": [asdict(n) for n in noise],
                },
                indent=2,
            )
        )
    if args.write:
        existing = args.write.read_text() if args.write.exists() else None
        args.write.write_text(merge_section(existing, section))
        print(f"wrote the section into {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
