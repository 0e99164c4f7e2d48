"""Configuration: a YAML file plus `LLM_HEARTBEAT_*` environment variables, validated strictly.

Unknown keys are errors. `load_config` turns pydantic's errors into one `ConfigError` that names
the file, the field path and what is wrong, and never echoes a secret's value.
"""

from __future__ import annotations

from exporter.config.base import DEFAULT_MODEL_URL, DEFAULT_PROMPT, redact_url
from exporter.config.discovery import DiscoveryConfig, FileSDConfig, HTTPSDConfig
from exporter.config.engine import EngineCheck, EngineNames
from exporter.config.loading import ConfigError, load_config, read_yaml
from exporter.config.metrics import MetricsConfig
from exporter.config.probe import ProbeEndpointConfig, ProbeModule, ShardingConfig
from exporter.config.settings import Settings
from exporter.config.targets import (
    ChatCheck,
    Checks,
    HealthCheck,
    ModelsCheck,
    TargetConfig,
    TargetTemplate,
    Thresholds,
    targets_from_flags,
)

__all__ = [
    "DEFAULT_MODEL_URL",
    "DEFAULT_PROMPT",
    "ChatCheck",
    "Checks",
    "ConfigError",
    "DiscoveryConfig",
    "EngineCheck",
    "EngineNames",
    "FileSDConfig",
    "HTTPSDConfig",
    "HealthCheck",
    "MetricsConfig",
    "ModelsCheck",
    "ProbeEndpointConfig",
    "ProbeModule",
    "Settings",
    "ShardingConfig",
    "TargetConfig",
    "TargetTemplate",
    "Thresholds",
    "load_config",
    "read_yaml",
    "redact_url",
    "targets_from_flags",
]
