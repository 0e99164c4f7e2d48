"""The composition root of `llm-heartbeat run`: config -> monitor -> scheduler -> collectors
-> HTTP app (+ recovery receiver), and config reload. The only place that wires them."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from exporter.config import Settings, load_config
from exporter.discovery import Discovery, DiscoveryCollector, DiscoveryStats, merge_targets
from exporter.discovery.sharding import split
from exporter.engine.monitor import Monitor
from exporter.engine.pauses import PauseWatch
from exporter.engine.recovery_control import MonitorControl
from exporter.engine.scheduler import Scheduler
from exporter.errors import ConfigError
from exporter.metrics.collector import ExporterCollector, MonitorCollector
from exporter.metrics.shards import ShardCollector
from exporter.metrics.stores import StoreCollector, store_problems
from exporter.preflight import startup_secrets, unreadable_secret_files
from exporter.probes import make_client
from exporter.recovery.api import build_routes
from exporter.recovery.collector import RecoveryCollector
from exporter.recovery.service import RecoveryService
from exporter.server.app import create_app, reload_guard
from exporter.server.maintenance_api import maintenance_routes
from exporter.server.probe_endpoint import ProbeEndpoint
from exporter.server.snapshot import ViewCache
from exporter.util import memory
from exporter.util.faults import FAULTS

__all__ = ["Exporter"]

log = logging.getLogger(__name__)

YOUNG_GC_THRESHOLD = 20_000  # Exporter.start() says why

# settings bound to open sockets, files or running services: kept until a restart
_RESTART_ONLY = (
    "listen",
    "recovery",
    "history_file",
    "log_file",
    "log_format",
    "max_concurrency",
    "metrics",  # bucket layouts are fixed when a target starts
    "reload",  # its token is read at start
    "sharding",  # may come from --shard/--shards, which a reload of the file must not undo
)


class Exporter:
    """One running exporter. `start()` in a running event loop, `stop()` to end it cleanly."""

    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.discovery_stats = DiscoveryStats()
        self.discovery = Discovery(
            settings.discovery,
            base_dir=config_path.parent if config_path is not None else Path.cwd(),
            stats=self.discovery_stats,
            on_change=self._discovered,
        )
        self.monitor = Monitor(self.effective(settings))
        self.client = make_client(max_connections=max(settings.max_concurrency, 16))
        self.pauses = PauseWatch()  # the exporter's own pauses, never a target's (pauses.py)
        self.scheduler = Scheduler(
            self.monitor, self.client, settings.max_concurrency, pauses=self.pauses
        )
        self.monitor_collector = MonitorCollector(self.monitor)
        self.registry.register(self.monitor_collector)
        self.views = ViewCache(self.monitor)  # what /, /api/v1/targets render from
        self.exporter_collector = ExporterCollector(self.monitor, self.pauses)
        self.exporter_collector.reload_success_time = time.time()
        self.registry.register(self.exporter_collector)
        self.registry.register(DiscoveryCollector(self.discovery_stats))
        self.registry.register(
            ShardCollector(lambda: self.settings.sharding, lambda: self.known_targets)
        )
        # /probe gets its own pool and budget: it cannot starve the scheduled probes (its
        # pool size, budget and token are read at start; modules and allow-list reload)
        probe_cfg = settings.probe
        secrets = startup_secrets(settings)
        self.probe_client = make_client(max_connections=probe_cfg.max_concurrency)
        self.probe_endpoint = ProbeEndpoint(
            lambda: self.settings,
            self.probe_client,
            probe_cfg.max_concurrency,
            token=secrets["probe"],
        )
        self.registry.register(self.probe_endpoint.collector())
        self.recovery: RecoveryService | None = None
        self._reload_lock = asyncio.Lock()
        self._reload_tasks: set[asyncio.Task[tuple[bool, str]]] = set()
        self._extra_routes: list[BaseRoute] = [*self.probe_endpoint.routes()]
        guard = reload_guard(secrets["reload"], settings.reload.allow_loopback)
        self._extra_routes.extend(
            maintenance_routes(self.monitor, guard, self.scheduler.wake, self.views.invalidate)
        )
        self._build_recovery()
        self._build_status_page()
        # one writer per history file: a second exporter on the same file is refused here,
        # at start, with HistoryInUse (a ConfigError: the CLI prints it and exits 2)
        assert self.recovery is not None
        self.stores = [
            ("transitions", self.monitor.history.file),
            ("recovery", self.recovery.history.file),
        ]
        for _name, store in self.stores:
            store.claim()
        self.registry.register(StoreCollector(self.stores))
        self.app: Starlette = create_app(
            self.monitor,
            self.registry,
            ready=lambda: self.scheduler.started,
            troubles=lambda: store_problems(self.stores),
            reload=self.reload,
            reload_allowed=guard,
            extra_routes=self._extra_routes,
            before_scrape=self.monitor_collector.refresh,
            views=self.views,
        )

    def _build_recovery(self) -> None:
        """Always built: a disabled receiver answers 404 and still exports its metrics as 0.
        Raises RecoveryConfigError (e.g. rules without a bearer token)."""
        recovery = self.settings.recovery
        unknown = recovery.unknown_targets(set(self.monitor.targets))
        if unknown:
            log.warning(
                "recovery rules name targets that are not configured: %s", ", ".join(unknown)
            )
        self.recovery = RecoveryService(
            recovery,
            MonitorControl(self.monitor, self.scheduler),
            listen_host=self.settings.listen_host,
        )
        self.registry.register(RecoveryCollector(self.recovery))
        self._extra_routes.extend(build_routes(self.recovery))

    def _build_status_page(self) -> None:
        try:
            from exporter.server.web import status_routes
        except ImportError:
            return
        self._extra_routes.extend(status_routes(self.monitor, self.views))

    # ---- the target set: static + discovered, then this replica's shard ------------------
    def effective(self, settings: Settings) -> Settings:
        """The settings the monitor runs: discovered targets added, other shards' removed."""
        targets, dropped = merge_targets(settings.targets, self.discovery.targets())
        for name in dropped:
            log.warning("discovered target %r has the name of a static target; skipped", name)
        self.known_targets = len(targets)
        shard = settings.sharding
        targets = split(targets, shard.index, shard.count)
        return settings.model_copy(update={"targets": targets})

    def _discovered(self) -> None:
        """A discovery source changed: unchanged targets keep their state and counters."""
        added, removed = self.monitor.apply(self.effective(self.settings))
        self._forget_gone_faults()
        if self.scheduler.started:
            self.scheduler.sync()
        if added or removed:
            log.info(
                "discovery: %d target(s) now, %d added, %d removed",
                len(self.monitor.targets),
                len(added),
                len(removed),
            )

    def _forget_gone_faults(self) -> None:
        """The exporter's own problems of targets and key files no longer configured end."""
        targets = self.monitor.targets
        files = {str(rt.config.api_key_file) for rt in targets.values() if rt.config.api_key_file}
        FAULTS.retain(targets, files)

    async def start(self) -> None:
        if self.recovery is not None:
            await self.recovery.start()
        await self.discovery.start()
        self.monitor.apply(self.effective(self.settings))
        self.pauses.start()
        self.scheduler.start()
        log.info(
            "probing %d target(s): %s",
            len(self.monitor.targets),
            ", ".join(f"{rt.name}={rt.config.safe_url}" for rt in self.monitor.targets.values()),
        )
        # what exists now (modules, config, the targets' runtimes) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it; at 5,000
        # targets one walked ~250k objects and held the event loop ~150 ms (bench/, issue 16)
        gc.freeze()
        # Collect the youngest generation after 20,000 net new tracked objects, not 700: nearly
        # every object a probe makes dies by reference count, and the live ones (the waits,
        # connections and results of thousands of targets) reach the oldest generation at
        # once with the default, whose full walks then pause the loop several times a minute
        # (~100 ms each at 1,500 targets, growing with the count). bench/memlive.py at 1,500
        # targets, 60 s: 700 -> 402 young, 36 middle, 3 full collections, 719 ms in all, the
        # longest 104 ms; 20,000 -> 8 young ones, 77 ms in all, the longest 22 ms.
        # Not frozen again later (a reload, a round): what is frozen is never collected, and
        # a live object frozen now may be part of a reference cycle when it dies.
        gc.set_threshold(YOUNG_GC_THRESHOLD, 10, 10)
        # large view and scrape buffers go back to the OS when freed (util/memory.py)
        memory.tune_allocator()

    async def stop(self) -> None:
        await self.discovery.stop()
        await self.scheduler.stop()
        await self.pauses.stop()
        if self.recovery is not None:
            await self.recovery.stop()
        await self.client.aclose()
        await self.probe_client.aclose()
        self.monitor.history.close()

    def reload_in_background(self) -> None:
        """SIGHUP: reload in a task whose outcome is logged (never "Task exception was never
        retrieved")."""
        task = asyncio.ensure_future(self.reload())
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_done)

    def _reload_done(self, task: asyncio.Task[tuple[bool, str]]) -> None:
        self._reload_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reload failed: %s", type(task.exception()).__name__)

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; a bad one of any kind is rejected and the old one kept."""
        async with self._reload_lock:
            try:
                return await self._reload()
            except ConfigError as exc:
                message = str(exc)
            except Exception as exc:  # a bug must not leave a half-applied config unreported
                log.exception("reload failed")
                message = f"reload failed: {type(exc).__name__}"
            self.exporter_collector.reload_ok = False
            log.error("reload rejected, keeping the running config: %s", message)
            return False, message

    async def _reload(self) -> tuple[bool, str]:
        new = load_config(self.config_path).with_default_target()
        problems = unreadable_secret_files(new)
        if problems:  # as at start: a key file that cannot be read is refused, not probed
            where = f"invalid configuration in {self.config_path}"
            raise ConfigError(
                "\n  ".join([f"{where}: secret files the exporter needs:", *problems])
            )
        fixed = {k: getattr(self.settings, k) for k in _RESTART_ONLY}
        for key, value in fixed.items():
            if getattr(new, key) != value:
                log.warning("reload: %s changed; it takes effect only after a restart", key)
        new = new.model_copy(update=fixed)
        if new.discovery != self.discovery.config:
            await self.discovery.update(new.discovery)
        added, removed = self.monitor.apply(self.effective(new))
        self.settings = new
        self._forget_gone_faults()
        self.scheduler.sync()
        self.exporter_collector.reload_ok = True
        self.exporter_collector.reload_success_time = time.time()
        msg = (
            f"reloaded: {len(self.monitor.targets)} target(s), "
            f"{len(added)} added, {len(removed)} removed"
        )
        log.info(msg)
        return True, msg
