"""Prometheus's target-group format, pure: a decoded document -> groups -> TargetConfigs.

    [{"targets": ["10.0.0.5:8000", ...],
      "labels": {"__scheme__": "http", "name": "qwen-a", "model": "Qwen/Qwen3-4B"}}]

Each address becomes a TargetConfig built from the source's `template`: the URL from
`__scheme__` (default http) and the address (plus `__path_prefix__` if given), the name from a
`name` or `target` label when the group lists one address, else derived from the address; a
`model` label sets the expected model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.config import TargetConfig, TargetTemplate
from exporter.errors import SDFormatError, validation_messages

__all__ = [
    "Group",
    "SDFormatError",
    "decode_document",
    "derive_name",
    "merge_targets",
    "parse_groups",
    "targets_from_groups",
]

TOO_DEEP = "the document is nested too deep to be target groups"
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class Group:
    """One target group: addresses that share labels."""

    targets: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


def parse_groups(data: Any) -> list[Group]:
    """Validate a decoded SD document (a list of target groups)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise SDFormatError("the document must be a list of target groups")
    groups = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise SDFormatError(f"group {i}: must be a mapping with 'targets' and 'labels'")
        unknown = set(item) - {"targets", "labels"}
        if unknown:
            raise SDFormatError(f"group {i}: unknown key(s) {', '.join(sorted(unknown))}")
        targets = item.get("targets") or []
        labels = item.get("labels") or {}
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise SDFormatError(f"group {i}: 'targets' must be a list of strings")
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise SDFormatError(f"group {i}: 'labels' must map strings to strings")
        groups.append(Group(tuple(targets), dict(labels)))
    return groups


def derive_name(address: str) -> str:
    """A valid target name from host:port: brackets dropped, other odd characters as '_', and
    a leading '0' where a name must start with a letter or digit ("[::1]:8000" -> "0::1:8000",
    still the same address)."""
    name = _INVALID_NAME_CHARS.sub("_", address.replace("[", "").replace("]", ""))
    if not name[:1].isalnum():
        name = "0" + name
    return name[:128]


def targets_from_groups(
    groups: list[Group], template: TargetTemplate
) -> tuple[list[TargetConfig], list[str]]:
    """The targets the groups describe, and one message per entry that had to be skipped."""
    base = {key: getattr(template, key) for key in template.model_fields_set}
    out: list[TargetConfig] = []
    errors: list[str] = []
    seen: set[str] = set()
    for group in groups:
        labels = group.labels
        scheme = labels.get("__scheme__", "http")
        prefix = labels.get("__path_prefix__", "")
        given = labels.get("name") or labels.get("target")
        for address in group.targets:
            address = address.strip()
            if not _ADDRESS.match(address):
                errors.append(f"{address!r}: not a host:port address")
                continue
            name = given if given and len(group.targets) == 1 else derive_name(address)
            fields: dict[str, Any] = {**base, "name": name, "url": f"{scheme}://{address}{prefix}"}
            if labels.get("model"):
                fields["model"] = labels["model"]
            try:
                target = TargetConfig(**fields)
            except ValidationError as exc:
                errors.append(f"{address!r}: {validation_messages(exc, limit=1)[0][1]}")
                continue
            if target.name in seen:
                errors.append(f"{address!r}: target name {target.name!r} is listed twice")
                continue
            seen.add(target.name)
            out.append(target)
    return out, errors


def merge_targets(
    static: list[TargetConfig], discovered: list[TargetConfig]
) -> tuple[list[TargetConfig], list[str]]:
    """Static targets first; a discovered target whose name is already taken is dropped."""
    out = list(static)
    names = {t.name for t in static}
    dropped = []
    for target in discovered:
        if target.name in names:
            dropped.append(target.name)
            continue
        names.add(target.name)
        out.append(target)
    return out, dropped


def decode_document(text: str, suffix: str) -> Any:
    """JSON for .json files, YAML otherwise (JSON is valid YAML too). A document nested
    deeper than the parser's recursion limit is refused like any other bad document."""
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SDFormatError(f"not valid JSON at line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise SDFormatError(TOO_DEEP) from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise SDFormatError(TOO_DEEP) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SDFormatError(f"not valid YAML{where}") from None
