"""All configured sources together: their union, reloads, and one watcher task per source."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from exporter.config import DiscoveryConfig, FileSDConfig, HTTPSDConfig, TargetConfig
from exporter.discovery.sources import FileSDSource, HTTPSDSource
from exporter.discovery.stats import DiscoveryStats
from exporter.util.http import http_client

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    import httpx

__all__ = ["Discovery"]

AnySource = FileSDSource | HTTPSDSource

log = logging.getLogger("exporter.discovery")


class Discovery:
    """All configured sources; `targets()` is their union, `on_change` fires when it changes."""

    def __init__(
        self,
        config: DiscoveryConfig,
        *,
        base_dir: Path,
        stats: DiscoveryStats,
        on_change: Callable[[], None],
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.base_dir = base_dir
        self.stats = stats
        self.on_change = on_change
        self._client = client
        self._own_client = client is None
        self.sources: list[AnySource] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = http_client(timeout=None)  # each fetch has its own deadline
        return self._client

    def _build(self, config: FileSDConfig | HTTPSDConfig) -> AnySource:
        if isinstance(config, FileSDConfig):
            return FileSDSource(config, self.stats, self.base_dir)
        return HTTPSDSource(config, self.stats, self.client)

    def targets(self) -> list[TargetConfig]:
        out, seen = [], set()
        for source in self.sources:
            for target in source.targets:
                if target.name in seen:
                    log.warning(
                        "discovery %s: target %r is already listed by another source; skipped",
                        source.name,
                        target.name,
                    )
                    continue
                seen.add(target.name)
                out.append(target)
        return out

    async def start(self) -> None:
        """Read every source once, then watch them."""
        await self.update(self.config, initial=True)

    async def update(self, config: DiscoveryConfig, *, initial: bool = False) -> None:
        """Take a new discovery config: unchanged sources keep their list and their watcher,
        new or changed ones are read once before this returns (so a reload loses no target)."""
        spare = [] if initial else list(self.sources)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        sources: list[AnySource] = []
        fresh: list[AnySource] = []
        for cfg in config.sources:
            same = next((s for s in spare if s.config == cfg), None)
            if same is not None:
                spare.remove(same)
                sources.append(same)
            else:
                source = self._build(cfg)
                fresh.append(source)
                sources.append(source)
        await asyncio.gather(*(s.refresh() for s in fresh))
        self.sources = sources
        self.config = config
        self.stats.forget({s.name for s in self.sources})
        self._tasks = [
            asyncio.create_task(self._watch(s), name=f"discovery:{s.name}") for s in self.sources
        ]

    async def _watch(self, source: AnySource) -> None:
        while True:
            try:
                await source.run(self.on_change)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end discovery for good
                log.exception("discovery %s: watcher raised; restarting it", source.name)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
