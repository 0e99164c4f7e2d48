"""Target discovery from what already lists the model servers: Prometheus file-SD files and
Prometheus HTTP-SD endpoints, in Prometheus's target-group format.

    groups.py    the format, pure: document -> groups -> TargetConfigs, name clashes
    sources.py   file-SD (polled mtimes, debounced) and HTTP-SD (polled, bounded body)
    stats.py     per-source counters and their collector
    manager.py   Discovery: every source, their union, reloads, the watcher tasks
    sharding.py  which targets this replica probes

A source that cannot be read or parsed keeps its last good list.
"""

from __future__ import annotations

from exporter.discovery.groups import (
    Group,
    SDFormatError,
    decode_document,
    derive_name,
    merge_targets,
    parse_groups,
    targets_from_groups,
)
from exporter.discovery.manager import Discovery
from exporter.discovery.sources import FileSDSource, HTTPSDSource
from exporter.discovery.stats import DiscoveryCollector, DiscoveryStats, SourceStats

__all__ = [
    "Discovery",
    "DiscoveryCollector",
    "DiscoveryStats",
    "FileSDSource",
    "Group",
    "HTTPSDSource",
    "SDFormatError",
    "SourceStats",
    "decode_document",
    "derive_name",
    "merge_targets",
    "parse_groups",
    "targets_from_groups",
]
