"""One simulated vLLM server: its listening socket, its faults, its admin API.

Listening lifecycle, as a client sees it:
  start()            the port is bound at once but only listens after `startup_seconds`
                     (connect() is refused meanwhile, like vLLM loading weights);
  fault "down"       the listener and every open connection close: connection refused;
  fault "crash"      with allow_exit the process exits; otherwise like "down" until reset;
  clear / reset      the same port listens again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from exporter.simulate.admin import AdminServer
from exporter.simulate.app import PublicApi
from exporter.simulate.config import SimulatorConfig
from exporter.simulate.conn import Conn, SimStats
from exporter.simulate.engine import Scheduler, engine_gauges
from exporter.simulate.faults import FaultBoard, FaultSpec
from exporter.simulate.generation import EngineParts
from exporter.simulate.metrics import EngineGauges, VllmMetrics
from exporter.simulate.threads import T, bind_socket, call_in_loop

__all__ = ["Simulator"]

CRASH_EXIT_DELAY = 0.05


class Simulator:
    """A vLLM look-alike on one port. Use inside a running asyncio loop:

        sim = Simulator(SimulatorConfig(port=0))
        await sim.start(); sim.set_fault(FaultSpec(kind="hang")); await sim.stop()

    The sync methods (set_fault, clear_faults, ...) may be called from other threads.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.faults = FaultBoard()
        self.scheduler: Scheduler | None = None
        self._stats = SimStats()
        self.metrics = VllmMetrics(
            self.config.max_model_len,
            self._read_gauges,
            cache_info={
                "block_size": "16",
                "cache_dtype": "auto",
                "enable_prefix_caching": "True",
                "gpu_memory_utilization": "0.9",
                "num_gpu_blocks": str(self.config.kv_cache_tokens // 16),
            },
        )
        self.phase = "stopped"
        self._port = self.config.port
        self._admin: AdminServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[Any], Conn] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._api: PublicApi | None = None
        self._listen_sock: socket.socket | None = None
        self._want_listen = False
        self._generation = 0

    # ----- properties ----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def admin_url(self) -> str | None:
        return None if self._admin is None else self._admin.url

    @property
    def stats(self) -> SimStats:
        return SimStats(**self._stats.as_dict())

    @property
    def listening(self) -> bool:
        return self._want_listen

    def served_model(self) -> str:
        swap = self.faults.get("model_swap", time.monotonic())
        if swap is not None:
            return swap.model or "Qwen/Qwen2.5-0.5B-Instruct"
        return self.config.model

    def _read_gauges(self) -> tuple[str, Any]:
        model = self.served_model()
        if self.scheduler is None:
            return model, EngineGauges(0, 0, 0.0)
        gauges = engine_gauges(
            self.scheduler, self.faults, self.metrics, model, self.config.token_interval_seconds
        )
        return model, gauges

    # ----- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Bind now, listen after the start-up phase; the admin API is up at once."""
        self._loop = asyncio.get_running_loop()
        self.scheduler = Scheduler(self.config.max_num_seqs, self.config.kv_cache_tokens)
        parts = EngineParts(self.config, self.faults, self.scheduler, self.metrics, self._stats)
        self._api = PublicApi(parts, self.served_model)
        self.metrics.prime(self.config.model)
        now = time.monotonic()
        for spec in self.config.faults:
            self.faults.set(spec, now)
        self._sock = bind_socket(self.config.host, self.config.port)
        self._port = self._sock.getsockname()[1]
        if self.config.admin_port is not None:
            self._admin = AdminServer(self, self.config.admin_port)
            await self._admin.start()
        if self.config.startup_seconds > 0:
            self.phase = "starting"
            self._later(self.config.startup_seconds, self._startup_done)
        else:
            self._startup_done()

    def _startup_done(self) -> None:
        now = time.monotonic()
        if self.faults.get("down", now) or self.faults.get("crash", now):
            self.phase = "down"
            return
        self.phase = "ready"
        self._listen()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the port listens (after the start-up phase)."""
        deadline = time.monotonic() + timeout
        while self.phase != "ready" or self._server is None:
            if time.monotonic() > deadline:
                raise TimeoutError("simulator did not become ready")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Close everything this simulator opened."""
        self._run(self._shutdown)
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        await asyncio.sleep(0)

    def _shutdown(self) -> None:
        self.phase = "stopped"
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._unlisten()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ----- listening -----------------------------------------------------------------

    def _listen(self) -> None:
        if self._want_listen or self._loop is None:
            return
        self._want_listen = True
        sock = self._sock if self._sock is not None else bind_socket(self.config.host, self._port)
        self._sock = None
        # Listening starts here, synchronously: connections wait in the backlog until the
        # server task below picks them up, so there is no refused window.
        sock.listen(1024)
        self._listen_sock = sock
        self._generation += 1
        generation = self._generation
        task = self._loop.create_task(
            asyncio.start_server(self._on_connection, sock=sock, limit=64 * 1024)
        )

        def started(t: asyncio.Task[asyncio.Server]) -> None:
            if t.cancelled() or t.exception() is not None:
                return
            server = t.result()
            if generation != self._generation or not self._want_listen:
                server.close()
                return
            self._server = server

        task.add_done_callback(started)

    def _unlisten(self) -> None:
        """Stop listening now and drop every open connection (RST)."""
        self._want_listen = False
        self._generation += 1
        server, self._server = self._server, None
        sock, self._listen_sock = self._listen_sock, None
        if server is not None:
            server.close()
        if sock is not None:
            sock.close()
        for task, conn in list(self._conns.items()):
            conn.writer.transport.abort()
            task.cancel()
        self._conns.clear()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None and self._api is not None
        conn = Conn(reader, writer)
        self._conns[task] = conn
        self._stats.connections += 1
        try:
            await self._api.serve(conn)
        finally:
            self._conns.pop(task, None)
            writer.close()

    # ----- faults --------------------------------------------------------------------

    def set_fault(self, spec: FaultSpec) -> None:
        """Switch a fault on (replacing one of the same kind)."""
        self._run(lambda: self._set(spec))

    def clear_fault(self, kind: str) -> None:
        self._run(lambda: self._clear(kind))

    def clear_faults(self) -> None:
        """Back to healthy: no faults, listening again."""
        self._run(lambda: self._clear(None))

    def fault_state(self) -> dict[str, Any]:
        return self._run(self._state)

    def _set(self, spec: FaultSpec) -> None:
        self.faults.set(spec, time.monotonic())
        self._apply(spec)

    def _apply(self, spec: FaultSpec | None) -> None:
        if spec is None:
            return
        if spec.kind == "down":
            if self.phase == "ready":
                self.phase = "down"
            self._unlisten()
            if spec.lifetime is not None:
                self._later(spec.lifetime, lambda: self._clear("down"))
        elif spec.kind == "crash":
            self._unlisten()
            self.phase = "crashed"
            if self.config.allow_exit:
                assert self._loop is not None
                self._loop.call_later(CRASH_EXIT_DELAY, os._exit, spec.exit_code)

    def _clear(self, kind: str | None) -> None:
        self.faults.clear(kind)
        now = time.monotonic()
        if self.phase in ("down", "crashed") and not (
            self.faults.get("down", now) or self.faults.get("crash", now)
        ):
            self.phase = "ready"
            self._listen()

    def _state(self) -> dict[str, Any]:
        now = time.monotonic()
        gauges = self._read_gauges()[1]
        return {
            "phase": self.phase,
            "listening": self._want_listen,
            "port": self._port,
            "url": self.url,
            "model": self.served_model(),
            "configured_model": self.config.model,
            "faults": self.faults.snapshot(now),
            "stats": self._stats.as_dict(),
            "engine": {
                "running": gauges.running,
                "waiting": gauges.waiting,
                "kv_cache_usage": gauges.kv_cache_usage,
            },
        }

    # ----- threading -----------------------------------------------------------------

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        self._timers.append(self._loop.call_later(delay, fn))

    def _run(self, fn: Callable[[], T]) -> T:
        """Run fn in the simulator's loop thread (directly when already there)."""
        return call_in_loop(self._loop, fn)
