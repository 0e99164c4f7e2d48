"""RSS of a running exporter whose views are polled (issue 26): N discovered targets (file-SD),
`/api/v1/targets` and `/metrics` fetched every `--poll` seconds (gzip accepted, as Prometheus
and browsers do), then no client for `--idle` seconds. Prints RSS over time.

The targets are loopback addresses nothing listens on (a refused connection is the cheapest
probe), health check only, so what grows is what the views cost, not what probing costs.

Run: python -m bench.viewpoll [--targets 10000] [--seconds 300] [--poll 5] [--idle 60]
     [--env MALLOC_ARENA_MAX=2] [--tracemalloc]. No assertions: figures for docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.servers import free_port_block, wait_port

__all__ = ["main", "rss_of"]


def rss_of(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(tmp: Path, targets: int, interval: float, port: int) -> Path:
    # 127.1.x.y:9: loopback addresses nothing listens on, so the probe is refused at once
    groups = [
        {"targets": [f"127.1.{i // 250}.{i % 250 + 1}:9"], "labels": {"name": f"t{i:05d}"}}
        for i in range(targets)
    ]
    (tmp / "sd.json").write_text(json.dumps(groups))
    cfg = tmp / "c.yml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\nhistory_file: {tmp / 'h.jsonl'}\n"
        "max_concurrency: 256\n"
        "discovery:\n  file_sd:\n    - files: [sd.json]\n      template:\n"
        f"        interval: {interval}\n"
        "        checks: {models: {enabled: false}, chat: {enabled: false}}\n"
    )
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=300.0, help="seconds of polling")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    p.add_argument("--idle", type=float, default=60.0, help="seconds with no client after")
    p.add_argument("--interval", type=float, default=30.0, help="probe interval")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the exporter")
    p.add_argument("--json", type=Path, help="write the samples here")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="llmhb-viewpoll-"))
    port = free_port_block(1, start=30000, stop=32000)
    cfg = _config(tmp, a.targets, a.interval, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_HEARTBEAT_")}
    env.update(kv.split("=", 1) for kv in a.env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "run", "-c", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "log.txt").open("wb"),
    )
    samples: list[dict[str, float | str]] = []
    try:
        wait_port(port, 60)
        base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        with httpx.Client(timeout=300, headers={"Accept-Encoding": "gzip"}) as c:
            while not c.get(base + "/-/ready").is_success:
                time.sleep(0.5)
            start_rss = rss_of(proc.pid)
            samples.append({"t": 0.0, "phase": "start", "rss_mib": start_rss})
            print(f"{a.targets} targets, ready after {time.monotonic() - t0:.1f}s, "
                  f"RSS {start_rss:.0f} MiB; polling every {a.poll:g}s")  # fmt: skip
            t0 = time.monotonic()
            next_print = 0.0
            while (now := time.monotonic() - t0) < a.seconds:
                t_api = time.monotonic()
                c.get(base + "/api/v1/targets")
                t_metrics = time.monotonic()
                c.get(base + "/metrics")
                took = (t_metrics - t_api, time.monotonic() - t_metrics)
                if now >= next_print:
                    rss = rss_of(proc.pid)
                    samples.append({"t": round(now, 1), "phase": "polled", "rss_mib": rss})
                    print(
                        f"  t={now:6.0f}s  polled  RSS {rss:6.0f} MiB  "
                        f"(api {took[0]:.2f}s, metrics {took[1]:.2f}s)"
                    )
                    next_print += 30.0
                time.sleep(max(0.0, a.poll - (time.monotonic() - t0 - now)))
        t1 = time.monotonic()
        while (idle := time.monotonic() - t1) < a.idle:
            time.sleep(min(30.0, a.idle - idle))
            rss = rss_of(proc.pid)
            samples.append({"t": round(a.seconds + idle, 1), "phase": "idle", "rss_mib": rss})
            print(f"  t={a.seconds + idle:6.0f}s  idle    RSS {rss:6.0f} MiB")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if a.json:
        a.json.write_text(json.dumps({"args": vars(a) | {"json": str(a.json)}, "samples": samples}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
