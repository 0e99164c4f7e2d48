"""Many simulated targets in one process (benchmarks: thousands of ports, one admin API)."""

from __future__ import annotations

from dataclasses import replace

from exporter.simulate.admin import AdminServer
from exporter.simulate.config import SimulatorConfig
from exporter.simulate.server import Simulator

__all__ = ["SimulatorFarm", "parse_port_range"]


def parse_port_range(text: str) -> list[int]:
    """ "9000-9999" or "9000,9005,9010-9012" -> ports, in order, without duplicates."""
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError as exc:
            raise ValueError(f"not a port or port range: {part!r}") from exc
        if not (1 <= first <= last <= 65535):
            raise ValueError(f"bad port range: {part!r}")
        ports.extend(p for p in range(first, last + 1) if p not in ports)
    if not ports:
        raise ValueError("no ports given")
    return ports


class SimulatorFarm:
    """One Simulator per port, sharing a single loopback admin API (`?port=N` selects)."""

    def __init__(self, config: SimulatorConfig, ports: list[int]) -> None:
        self.config = config
        self.simulators = [Simulator(replace(config, port=port, admin_port=None)) for port in ports]
        self._admin: AdminServer | None = None

    @property
    def admin_url(self) -> str | None:
        return None if self._admin is None else self._admin.url

    def targets(self) -> dict[int, Simulator]:
        return {sim.port: sim for sim in self.simulators}

    async def start(self) -> None:
        for sim in self.simulators:
            await sim.start()
        if self.config.admin_port is not None:
            self._admin = AdminServer(self.targets, self.config.admin_port)
            await self._admin.start()

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        for sim in self.simulators:
            await sim.stop()
