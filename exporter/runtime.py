"""The composition root of `llm-heartbeat run`: config -> monitor -> scheduler -> collectors
-> HTTP app (+ recovery receiver), and config reload. The only place that wires them."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from exporter.app import create_app
from exporter.collector import ExporterCollector, MonitorCollector
from exporter.config import ConfigError, Settings, load_config
from exporter.monitor import Monitor
from exporter.probes import make_client
from exporter.scheduler import Scheduler

__all__ = ["Exporter"]

log = logging.getLogger(__name__)

# settings bound to open sockets, files or running services: kept until a restart
_RESTART_ONLY = ("listen", "recovery", "history_file", "log_file", "log_format", "max_concurrency")


class Exporter:
    """One running exporter. `start()` in a running event loop, `stop()` to end it cleanly."""

    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.monitor = Monitor(settings)
        self.client = make_client(max_connections=max(settings.max_concurrency, 16))
        self.scheduler = Scheduler(self.monitor, self.client, settings.max_concurrency)
        self.registry.register(MonitorCollector(self.monitor))
        self.exporter_collector = ExporterCollector(self.monitor)
        self.exporter_collector.reload_success_time = time.time()
        self.registry.register(self.exporter_collector)
        self.recovery: Any = None
        self._reload_lock = asyncio.Lock()
        self._extra_routes: list[BaseRoute] = []
        self._build_recovery()
        self._build_status_page()
        self.app: Starlette = create_app(
            self.monitor,
            self.registry,
            ready=lambda: self.scheduler.started,
            reload=self.reload,
            extra_routes=self._extra_routes,
        )

    def _build_recovery(self) -> None:
        if not self.settings.recovery.enabled:
            return
        from exporter.recovery import RecoveryService
        from exporter.recovery_adapter import MonitorControl

        self.recovery = RecoveryService(
            self.settings.recovery, MonitorControl(self.monitor, self.scheduler), self.registry
        )
        self._extra_routes.extend(self.recovery.routes())

    def _build_status_page(self) -> None:
        try:
            from exporter.web import status_routes
        except ImportError:
            return
        self._extra_routes.extend(status_routes(self.monitor))

    async def start(self) -> None:
        if self.recovery is not None:
            await self.recovery.start()
        self.scheduler.start()
        log.info(
            "probing %d target(s): %s",
            len(self.monitor.targets),
            ", ".join(f"{rt.name}={rt.config.safe_url}" for rt in self.monitor.targets.values()),
        )

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self.recovery is not None:
            await self.recovery.stop()
        await self.client.aclose()
        self.monitor.history.close()

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; a bad one is rejected and the old one kept."""
        async with self._reload_lock:
            try:
                new = load_config(self.config_path).with_default_target()
            except ConfigError as exc:
                self.exporter_collector.reload_ok = False
                log.error("reload rejected, keeping the running config: %s", exc)
                return False, str(exc)
            fixed = {k: getattr(self.settings, k) for k in _RESTART_ONLY}
            for key, value in fixed.items():
                if getattr(new, key) != value:
                    log.warning("reload: %s changed; it takes effect only after a restart", key)
            new = new.model_copy(update=fixed)
            added, removed = self.monitor.apply(new)
            self.settings = new
            self.scheduler.sync()
            self.exporter_collector.reload_ok = True
            self.exporter_collector.reload_success_time = time.time()
            msg = f"reloaded: {len(new.targets)} target(s), {len(added)} added, {len(removed)} removed"
            log.info(msg)
            return True, msg
