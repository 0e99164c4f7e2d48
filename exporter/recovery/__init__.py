"""The recovery receiver: Alertmanager webhook -> guarded restart -> verification -> humans.

Wiring (done by exporter/runtime.py)::

    service = RecoveryService(config.recovery, adapter, registry, listen_host=listen_host)
    routes = service.routes()  # mounted on the Starlette app
    await service.start()  # before serving
    ...
    await service.stop()

`adapter` implements `TargetControl` (ports.py); `RecoveryConfig.unknown_targets(names)` lists
targets named in rules that are not configured, for the cross-check. User docs: README.md.
"""

from __future__ import annotations

from exporter.config.recovery import RecoveryConfig
from exporter.errors import RecoveryConfigError
from exporter.recovery.ports import TargetCheck, TargetControl
from exporter.recovery.service import RecoveryService

__all__ = [
    "RecoveryConfig",
    "RecoveryConfigError",
    "RecoveryService",
    "TargetCheck",
    "TargetControl",
]
