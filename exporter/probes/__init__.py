"""One prober per check, all with the same signature and the same result shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from exporter.probes._http import ProbeContext, make_client
from exporter.probes.chat import probe_chat
from exporter.probes.engine import probe_engine
from exporter.probes.health import probe_health
from exporter.probes.models import probe_models
from exporter.probes.results import Check, ProbeResult

__all__ = [
    "PROBES",
    "ProbeContext",
    "ProbeFn",
    "make_client",
    "probe_chat",
    "probe_engine",
    "probe_health",
    "probe_models",
]

ProbeFn = Callable[[ProbeContext], Awaitable[ProbeResult]]

PROBES: dict[Check, ProbeFn] = {
    Check.HEALTH: probe_health,
    Check.MODELS: probe_models,
    Check.CHAT: probe_chat,
    Check.ENGINE: probe_engine,
}
