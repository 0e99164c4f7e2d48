"""`check-config` reads the file-SD files the config names, as `run` would: a file that
cannot be read or is not target groups is refused there, not found at the first start."""

from __future__ import annotations

from pathlib import Path

from exporter.config import DiscoveryConfig, FileSDConfig
from exporter.discovery.groups import targets_from_groups
from exporter.discovery.sources import FileSDSource, read_error, read_file_sd
from exporter.discovery.stats import DiscoveryStats

__all__ = ["check_file_sd"]


def check_file_sd(config: DiscoveryConfig, base_dir: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings): a file that fails to read is an error naming it; an entry a read
    would skip (a bad address, a duplicate name) is a warning. Files not there yet are fine
    (a file-SD pattern may match nothing until the files are written)."""
    errors: list[str] = []
    warnings: list[str] = []
    for cfg in config.sources:
        if not isinstance(cfg, FileSDConfig):
            continue
        source = FileSDSource(cfg, DiscoveryStats(), base_dir)
        for path in source.paths():
            try:
                groups = read_file_sd(path)
            except Exception as exc:  # whatever `run` would count as a failed read
                errors.append(f"{path}: discovery {source.name}: {read_error(exc)}")
                continue
            _, skipped = targets_from_groups(groups, cfg.template)
            warnings.extend(f"{path}: skipped {problem}" for problem in skipped)
    return errors, warnings
