"""The recovery receiver: Alertmanager webhook -> guarded restart -> verification -> humans."""

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
