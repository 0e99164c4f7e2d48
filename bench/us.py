"""Our side of the scale bench: one exporter process, the real `Exporter` served by uvicorn as
`llm-heartbeat run` serves it, plus what only the inside can see: event-loop lag and the
duration of every probe of the delay targets. Run: python -m bench.us --spec FILE.

The harness drives it over HTTP: GET /-/bench/mark (counters now), GET /-/bench/results,
POST /-/bench/stop. Its CPU is read from /proc by the harness, so the sampler's few wake-ups
a second are charged to us too."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from bench import fixtures
from bench.runner import FAST_INTERVALS, PROMETHEUS_ACCEPT
from exporter.config import Settings, ShardingConfig, TargetConfig
from exporter.metrics.exposition import render
from exporter.metrics.slices import render_async
from exporter.probes.results import ProbeResult
from exporter.runtime import Exporter
from exporter.util.loop import run as run_loop

__all__ = ["build_settings", "main"]

LAG_PERIOD = 0.1


def build_settings(spec: dict[str, Any]) -> Settings:
    """Every target with the three checks blackbox_exporter is given too (health, models,
    chat; the engine check, which nginx cannot answer, is off so both sides run the same
    probes), the bench model named, no history file; `sharding` (index, count) when the
    harness runs several processes, each probing its hash share of every target."""
    checks: dict[str, Any] = {"engine": {"enabled": False}}
    interval = spec["interval"]
    if spec.get("profile") == "fast":  # examples/fast-detection.yml, as bench/runner.py says
        checks |= {
            "health": {"interval": FAST_INTERVALS["health"], "timeout": 2.0},
            "chat": {"interval": FAST_INTERVALS["chat"], "timeout": 10.0,
                     "ttft_timeout": 2.0, "chunk_timeout": 2.0},
        }  # fmt: skip
        interval = FAST_INTERVALS["models"]
    targets = [
        TargetConfig(name=t["name"], url=t["url"], model=fixtures.MODEL, checks=checks)
        for t in spec["targets"]
    ]
    return Settings(
        targets=targets,
        default_interval=interval,
        max_concurrency=spec["max_concurrency"],
        history_file=None,
        log_level="warning",
        sharding=ShardingConfig(**spec.get("sharding", {})),
    )


class Probe:
    """Counts every recorded probe and keeps the delay targets' durations."""

    def __init__(self, exporter: Exporter, delay_targets: set[str]) -> None:
        self.probes = 0
        self.successes = 0
        self.delay_samples: list[tuple[float, str, float, bool]] = []
        self.lag: list[tuple[float, float]] = []
        self.gc: list[tuple[float, int, float]] = []  # (when, generation, pause seconds)
        self._gc_start = 0.0
        gc.callbacks.append(self._gc_event)
        record = exporter.monitor.record

        def counted(name: str, result: ProbeResult) -> Any:
            self.probes += 1
            self.successes += result.success
            if name in delay_targets:
                self.delay_samples.append(
                    (result.timestamp, result.check.value, result.duration, result.success)
                )
            return record(name, result)

        exporter.monitor.record = counted  # type: ignore[method-assign]

    def _gc_event(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc.append((time.time(), info["generation"], time.perf_counter() - self._gc_start))

    async def sample_lag(self) -> None:
        """How late a 100 ms sleep wakes (perf_counter: uvloop's loop.time() counts whole ms)."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(LAG_PERIOD)
            self.lag.append((time.time(), time.perf_counter() - start - LAG_PERIOD))


async def _render_ms(exporter: Exporter, client: bool) -> tuple[float, int, float]:
    """/metrics rendering alone (OpenMetrics, as Prometheus asks), median of 5 (client: 1),
    its size, and the longest the shipped path holds the event loop in one piece.

    Shipped path, every target marked changed first (as at a 15 s scrape of 15 s probes):
    the loop time one scrape costs, however it is sliced, is the collector's refresh in one
    go plus exposition.render; the longest piece is the longest turn of the loop (measured by
    a task that yields in a loop) while the sliced refresh and render_async run, as the
    /metrics route runs them. Client: what the app served before, prometheus_client's encoder."""
    encoder, _ = choose_encoder(PROMETHEUS_ACCEPT)
    times, holds = [], []
    body = b""
    collector = exporter.monitor_collector
    for _ in range(1 if client else 5):  # the old encoder takes seconds at 5,000
        if client:
            t0 = time.perf_counter()
            body = encoder(exporter.registry)
            times.append((time.perf_counter() - t0) * 1000)
            continue
        _touch(exporter)
        t0 = time.perf_counter()
        await collector.refresh(slice_seconds=float("inf"))
        body = render(exporter.registry, PROMETHEUS_ACCEPT)[0]
        times.append((time.perf_counter() - t0) * 1000)
        _touch(exporter)
        gaps: list[float] = []

        async def ticker(gaps: list[float] = gaps) -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0)
                gaps.append(time.perf_counter() - t)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await collector.refresh()
        await render_async(exporter.registry, PROMETHEUS_ACCEPT)
        task.cancel()
        holds.append(max(gaps, default=0.0) * 1000)
    return statistics.median(times), len(body), statistics.median(holds) if holds else 0.0


def _touch(exporter: Exporter) -> None:
    for rt in exporter.monitor.targets.values():
        rt.version += 1  # stale blocks: the worst case


async def run(spec: dict[str, Any], ready_file: Path) -> None:
    import uvicorn

    settings = build_settings(spec)
    exporter = Exporter(settings)
    probe = Probe(exporter, set(spec.get("delay_targets", [])))

    async def mark(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "time": time.time(),
                "probes": probe.probes,
                "successes": probe.successes,
                "targets": len(exporter.monitor.targets),  # this process's share
            }
        )

    async def results(request: Request) -> JSONResponse:
        exposition_ms, size, join_ms = await _render_ms(exporter, client=False)
        client_ms, _, _ = await _render_ms(exporter, client=True)
        return JSONResponse(
            {
                "lag": probe.lag,
                "gc": probe.gc,
                "delay_samples": probe.delay_samples,
                "render_exposition_ms": exposition_ms,
                "render_client_ms": client_ms,
                "render_join_ms": join_ms,
                "render_bytes": size,
            }
        )

    async def client_metrics(request: Request) -> Response:
        """The handler exporter/server/app.py had before it used exposition.render."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(exporter.registry), media_type=content_type)

    async def stop(request: Request) -> JSONResponse:
        server.should_exit = True
        return JSONResponse({"stopping": True})

    app = Starlette(
        routes=[
            Route("/-/bench/mark", mark),
            Route("/-/bench/results", results),
            Route("/-/bench/stop", stop, methods=["POST"]),
            # --metrics client: /metrics through prometheus_client's encoder, as exporter/server/app.py
            # served it before; otherwise (the default) the exporter's own /metrics, as shipped
            *([Route("/metrics", client_metrics)] if spec.get("metrics") == "client" else []),
            Mount("/", app=exporter.app),
        ]
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", backlog=256)
    )
    await exporter.start()
    lag_task = asyncio.create_task(probe.sample_lag())
    serve = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.02)
    ready_file.write_text(json.dumps({"port": sock.getsockname()[1]}))
    await serve
    lag_task.cancel()
    await exporter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    # on the loop `llm-heartbeat run` serves on (uvloop where installed): measured as shipped
    run_loop(run(json.loads(args.spec.read_text()), args.ready_file))


if __name__ == "__main__":
    main()
