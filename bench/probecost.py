"""What the probes cost the model servers: synthetic requests, tokens and server-seconds per
target-hour, on an idle server and on a busy one (docs/probe-cost.md).

The exporter's collector loop (real probes over loopback, the shipped defaults: every check
every 15 s, the engine view every 5 s, `checks.chat.max_skip` 10 min) against two simulated
vLLM servers in their own threads: one idle, one under a steady client load (`--users`
streamed completions of `--user-tokens` tokens, back to back). Counted on the exporter's side
of every request it sends: probes by check, chat tokens (the server's usage chunk), and
server-seconds (the sum of the probes' durations: the time a request held the server).

Run it once per tree and merge (the code under test is whatever PYTHONPATH imports):

    PYTHONPATH=<before> python -m bench.probecost --seconds 720 --json before.json
    PYTHONPATH=<after>  python -m bench.probecost --seconds 720 --json after.json
    python -m bench.probecost --merge before.json after.json --write BENCHMARKS.md

Figures, not assertions: `make test` does not run this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.engine.scheduler import Scheduler
from exporter.probes import make_client
from exporter.probes.results import Check
from exporter.simulate import DEFAULT_MODEL, SimulatorConfig, run_in_thread

__all__ = ["main", "render"]

SECTION = "## Probe cost"
CHECKS = (Check.HEALTH, Check.MODELS, Check.CHAT, Check.ENGINE)


@contextlib.asynccontextmanager
async def client_load(
    url: str, users: int, tokens: int, model: str = DEFAULT_MODEL
) -> AsyncIterator[list[int]]:
    """`users` users streaming completions of `tokens` tokens back to back."""
    done = [0]
    body = {
        "model": model,
        "stream": True,
        "max_tokens": tokens,
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
    }

    async def user(client: httpx.AsyncClient) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                    async for _ in r.aiter_bytes():
                        pass
                done[0] += 1

    async with httpx.AsyncClient(timeout=60) as client:
        tasks = [asyncio.create_task(user(client)) for _ in range(users)]
        try:
            yield done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _figures(monitor: Monitor, name: str, seconds: float) -> dict[str, Any]:
    rt = monitor.targets[name]
    per_hour = 3600.0 / seconds
    durations = {c: rt.durations[c].sum if c in rt.durations else 0.0 for c in CHECKS}
    skipped = getattr(rt, "skipped", {})
    return {
        "state": rt.status.state.value,
        "requests_per_hour": {c.value: rt.probes[c] * per_hour for c in CHECKS},
        "requests": {c.value: rt.probes[c] for c in CHECKS},
        "chat_tokens_per_hour": (rt.tokens["prompt"] + rt.tokens["completion"]) * per_hour,
        "server_seconds_per_hour": {
            c.value: durations[c] * per_hour for c in CHECKS if c in rt.durations
        },
        "skipped": {f"{c.value}/{r}": n for (c, r), n in dict(skipped).items()},
    }


async def measure(
    seconds: float,
    users: int,
    tokens: int,
    urls: tuple[str, str] | None = None,
    model: str = DEFAULT_MODEL,
) -> dict[str, Any]:
    """The figures of one run; `urls`: an idle and a busy server of your own (e.g. two
    llama-servers) instead of the two simulators."""
    async with contextlib.AsyncExitStack() as stack:
        if urls is None:
            sims = [
                stack.enter_context(run_in_thread(SimulatorConfig(port=0, seed=i))) for i in (1, 2)
            ]
            urls = (sims[0].url, sims[1].url)
        return await _run(seconds, users, tokens, urls, model)
    raise AssertionError("unreachable")  # for mypy: the stack re-raises


async def _run(
    seconds: float, users: int, tokens: int, urls: tuple[str, str], model: str
) -> dict[str, Any]:
    # a model of your own may answer anything: then any non-empty answer passes
    chat = {} if model == DEFAULT_MODEL else {"prompt": "Say hello.", "expect_regex": "."}
    targets = [
        TargetConfig(name=name, url=url, model=model, checks={"chat": chat})
        for name, url in zip(("idle", "busy"), urls, strict=True)
    ]
    monitor = Monitor(Settings(targets=targets, history_file=None), sinks=[])
    views: list[tuple[float, float, float]] = []
    async with client_load(urls[1], users, tokens, model) as done, make_client() as client:
        await asyncio.sleep(5)  # the load is running before the first probe
        scheduler = Scheduler(monitor, client)
        scheduler.start()
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(5)
                view = monitor.targets["busy"].status.engine
                if view is not None:
                    s = view.sample
                    views.append((s.running or 0.0, s.waiting or 0.0, s.kv_usage or 0.0))
        finally:
            await scheduler.stop()
        elapsed = time.monotonic() - t0
        served = done[0]
    return {
        "seconds": elapsed,
        "servers": "simulated vLLM" if model == DEFAULT_MODEL else f"your own ({model})",
        "idle": _figures(monitor, "idle", elapsed),
        "busy": _figures(monitor, "busy", elapsed),
        "load": {
            "users": users,
            "tokens_per_request": tokens,
            "user_requests_per_hour": served * 3600.0 / elapsed,
            "engine_running_median": statistics.median(v[0] for v in views) if views else None,
            "engine_waiting_median": statistics.median(v[1] for v in views) if views else None,
            "engine_kv_median": statistics.median(v[2] for v in views) if views else None,
        },
    }


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _cut(before: float, after: float) -> str:
    return f"{(1 - after / before) * 100:.0f} %" if before else "-"


def render(before: dict[str, Any], after: dict[str, Any]) -> str:
    rows = []
    for scenario in ("idle", "busy"):
        b, a = before[scenario], after[scenario]
        chat_b, chat_a = b["requests_per_hour"]["chat"], a["requests_per_hour"]["chat"]
        all_b = sum(v for k, v in b["requests_per_hour"].items() if k != "engine")
        all_a = sum(v for k, v in a["requests_per_hour"].items() if k != "engine")
        sec_b = sum(v for k, v in b["server_seconds_per_hour"].items() if k != "engine")
        sec_a = sum(v for k, v in a["server_seconds_per_hour"].items() if k != "engine")
        rows.append(
            f"| {scenario} | {chat_b:.0f} → {chat_a:.0f} ({_cut(chat_b, chat_a)} fewer) "
            f"| {b['chat_tokens_per_hour']:.0f} → {a['chat_tokens_per_hour']:.0f} "
            f"| {all_b:.0f} → {all_a:.0f} | {sec_b:.1f} → {sec_a:.1f} s "
            f"| {', '.join(f'{k} {v}' for k, v in a['skipped'].items()) or '-'} "
            f"| {b['state']} / {a['state']} |"
        )
    load = after["load"]
    return "\n".join(
        [
            SECTION,
            "",
            f"Measured {after['date']} on {after['machine']}, `python -m bench.probecost "
            f"--seconds {after['seconds']:.0f}` once per tree: before = {before['commit']} "
            f"(every chat sent), after = {after['commit']} (`checks.chat.skip_when_busy`, "
            f"docs/probe-cost.md). Servers: {after.get('servers', 'simulated vLLM')}.",
            "",
            "The shipped defaults (every check every 15 s, engine view every 5 s, `max_skip` "
            "10 min), two targets probed for the whole run: one idle, one busy under "
            f"{load['users']} users streaming {load['tokens_per_request']}-token completions back "
            f"to back ({load['user_requests_per_hour']:.0f} user requests an hour; its engine "
            f"view: median {load['engine_running_median']} running, "
            f"{load['engine_waiting_median']} waiting, KV {load['engine_kv_median']}). Per "
            "target-hour, counted on the exporter's side of each request (server-seconds: the "
            "probes' summed durations). Requests and server-seconds: /health, /v1/models and "
            "the chat; the engine view (/metrics, every 5 s) is unchanged and left out.",
            "",
            "| server | synthetic chats / h | chat tokens / h | synthetic requests / h "
            "| server-seconds / h | chats skipped (after) | state (before / after) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _machine() -> str:
    from bench.detection import machine

    return str(machine())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=720.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--user-tokens", type=int, default=300)
    parser.add_argument("--urls", nargs=2, metavar=("IDLE", "BUSY"), help="servers of your own")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model they serve")
    parser.add_argument("--label", help="what the tree is (default: its git commit)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--merge", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    if args.merge:
        before, after = (json.loads(p.read_text()) for p in args.merge)
        section = render(before, after)
        print(section)
        if args.write:
            from bench.detection import merge_section

            existing = args.write.read_text() if args.write.exists() else None
            args.write.write_text(merge_section(existing, section, SECTION))
        return 0
    urls = tuple(args.urls) if args.urls else None
    result = asyncio.run(measure(args.seconds, args.users, args.user_tokens, urls, args.model))
    result |= {"commit": args.label or _commit(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    with contextlib.suppress(Exception):
        result["machine"] = _machine()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
