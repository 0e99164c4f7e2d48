"""Target discovery from what already lists the model servers: Prometheus file-SD files and
Prometheus HTTP-SD endpoints.

Both speak Prometheus's target-group format:

    [{"targets": ["10.0.0.5:8000", ...],
      "labels": {"__scheme__": "http", "name": "qwen-a", "model": "Qwen/Qwen3-4B"}}]

Each address becomes a TargetConfig built from the source's `template`: the URL from
`__scheme__` (default http) and the address (plus `__path_prefix__` if given), the name from a
`name` or `target` label when the group lists one address, else derived from the address; a
`model` label sets the expected model. A source that cannot be read or parsed keeps its last
good list; the error is logged and counted (`llm_discovery_errors_total{source}`).

File-SD files are watched by polling their modification times (no inotify dependency), and
re-read every `refresh_interval` anyway. HTTP-SD is polled every `refresh_interval` with a
timeout and a bounded body.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from exporter import __version__
from exporter.config import (
    DiscoveryConfig,
    FileSDConfig,
    HTTPSDConfig,
    TargetConfig,
    TargetTemplate,
    redact_url,
)

__all__ = [
    "Discovery",
    "DiscoveryCollector",
    "DiscoveryStats",
    "FileSDSource",
    "Group",
    "HTTPSDSource",
    "SDFormatError",
    "derive_name",
    "merge_targets",
    "parse_groups",
    "targets_from_groups",
]

log = logging.getLogger(__name__)

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$")


class SDFormatError(ValueError):
    """A target-group document that is not in Prometheus's SD format."""


@dataclass(frozen=True, slots=True)
class Group:
    """One target group: addresses that share labels."""

    targets: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


# ---- pure: documents -> groups -> targets -------------------------------------------------
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
                first = exc.errors(include_url=False, include_input=False)[0]
                errors.append(f"{address!r}: {first['msg'].removeprefix('Value error, ')}")
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
    """JSON for .json files, YAML otherwise (JSON is valid YAML too)."""
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SDFormatError(f"not valid JSON at line {exc.lineno}: {exc.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SDFormatError(f"not valid YAML{where}") from None


# ---- bookkeeping and metrics --------------------------------------------------------------
@dataclass
class SourceStats:
    targets: int = 0
    errors: int = 0
    last_success: float | None = None


class DiscoveryStats:
    """Per-source counters that outlive reloads (a reload rebuilds the sources, not these)."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceStats] = {}

    def get(self, name: str) -> SourceStats:
        return self.sources.setdefault(name, SourceStats())

    def forget(self, keep: set[str]) -> None:
        """Drop the gauges of sources no longer configured (their error counts stay)."""
        for name, stats in self.sources.items():
            if name not in keep:
                stats.targets = 0


class DiscoveryCollector(Collector):
    def __init__(self, stats: DiscoveryStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        targets = GaugeMetricFamily(
            "llm_discovery_targets", "Targets the source currently lists.", labels=["source"]
        )
        errors = CounterMetricFamily(
            "llm_discovery_errors",
            "Failed reads of the source (the last good list is kept).",
            labels=["source"],
        )
        last = GaugeMetricFamily(
            "llm_discovery_last_success_timestamp_seconds",
            "When the source was last read successfully.",
            labels=["source"],
        )
        for name, s in sorted(self.stats.sources.items()):
            targets.add_metric([name], s.targets)
            errors.add_metric([name], s.errors)
            if s.last_success is not None:
                last.add_metric([name], s.last_success)
        yield from (targets, errors, last)


# ---- sources -------------------------------------------------------------------------------
class _Source:
    """A source's last good target list; `refresh()` says whether it changed."""

    name: str
    config: FileSDConfig | HTTPSDConfig

    def __init__(self, stats: DiscoveryStats) -> None:
        self.stats = stats.get(self.config.name or "")
        self.targets: list[TargetConfig] = []

    def _publish(self, targets: list[TargetConfig], problems: list[str]) -> bool:
        for problem in problems:
            log.warning("discovery %s: skipped %s", self.name, problem)
        self.stats.targets = len(targets)
        self.stats.last_success = time.time()
        changed = targets != self.targets
        self.targets = targets
        return changed

    def _failed(self, message: str) -> None:
        self.stats.errors += 1
        log.error("discovery %s: %s; keeping the last good list", self.name, message)

    async def refresh(self) -> bool:
        raise NotImplementedError

    async def run(self, on_change: Callable[[], None]) -> None:
        raise NotImplementedError


class FileSDSource(_Source):
    """Prometheus file-SD: glob patterns, each file a list of target groups."""

    def __init__(self, config: FileSDConfig, stats: DiscoveryStats, base_dir: Path) -> None:
        self.config = config
        self.name = config.name or "file_sd"
        self.base_dir = base_dir
        super().__init__(stats)
        self._files: dict[Path, list[Group]] = {}
        self._signature: tuple[tuple[str, int, int], ...] | None = None

    def paths(self) -> list[Path]:
        out: set[Path] = set()
        for pattern in self.config.files:
            full = pattern if Path(pattern).is_absolute() else str(self.base_dir / pattern)
            out.update(Path(p) for p in glob.glob(full) if Path(p).is_file())
        return sorted(out)

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        sig = []
        for path in self.paths():
            with contextlib.suppress(OSError):
                st = path.stat()
                sig.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(sig)

    async def refresh(self) -> bool:
        return self.refresh_now()

    def refresh_now(self) -> bool:
        """Re-read every matching file; a broken file keeps its last good groups."""
        self._signature = self.signature()
        files: dict[Path, list[Group]] = {}
        failed = []
        for path in self.paths():
            try:
                text = path.read_text(encoding="utf-8")
                files[path] = parse_groups(decode_document(text, path.suffix.lower()))
            except (OSError, UnicodeDecodeError, SDFormatError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) else str(exc)
                failed.append(f"{path}: {detail}")
                if path in self._files:
                    files[path] = self._files[path]
        self._files = files
        for message in failed:
            self._failed(message)
        groups = [g for path in sorted(files) for g in files[path]]
        targets, problems = targets_from_groups(groups, self.config.template)
        return self._publish(targets, problems)

    async def run(self, on_change: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.config.refresh_interval
        while True:
            await asyncio.sleep(self.config.watch_interval)
            due = loop.time() >= next_full
            if not due and self.signature() == self._signature:
                continue
            if due:
                next_full = loop.time() + self.config.refresh_interval
            if self.refresh_now():
                on_change()


class HTTPSDSource(_Source):
    """Prometheus HTTP-SD: a GET answering 200 with a JSON list of target groups."""

    def __init__(
        self, config: HTTPSDConfig, stats: DiscoveryStats, client: httpx.AsyncClient
    ) -> None:
        self.config = config
        self.name = config.name or "http_sd"
        self.client = client
        super().__init__(stats)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "User-Agent": f"llm-heartbeat/{__version__}",
            "X-Prometheus-Refresh-Interval-Seconds": f"{self.config.refresh_interval:g}",
            **self.config.headers,
        }
        if self.config.bearer_token_file is not None:
            token = self.config.bearer_token_file.read_text(encoding="utf-8").strip()
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def fetch(self) -> bytes:
        limit = self.config.max_body_bytes
        async with asyncio.timeout(self.config.timeout):
            request = self.client.build_request("GET", self.config.url, headers=self._headers())
            response = await self.client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise SDFormatError(f"HTTP status {response.status_code}, expected 200")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise SDFormatError(f"body larger than {limit} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise SDFormatError(f"body larger than {limit} bytes")
                return bytes(body)
            finally:
                await response.aclose()

    async def refresh(self) -> bool:
        where = redact_url(self.config.url)
        try:
            body = await self.fetch()
            groups = parse_groups(decode_document(body.decode("utf-8"), ".json"))
        except TimeoutError:
            self._failed(f"{where}: no answer within {self.config.timeout:g}s")
            return False
        except (OSError, UnicodeDecodeError, SDFormatError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._failed(f"{where}: {detail}")
            return False
        except httpx.HTTPError as exc:
            self._failed(f"{where}: {type(exc).__name__}")
            return False
        targets, problems = targets_from_groups(groups, self.config.template)
        return self._publish(targets, problems)

    async def run(self, on_change: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_interval)
            if await self.refresh():
                on_change()


# ---- the set of sources --------------------------------------------------------------------
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
        self.sources: list[_Source] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    def _build(self, config: FileSDConfig | HTTPSDConfig) -> _Source:
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
        sources: list[_Source] = []
        fresh: list[_Source] = []
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

    async def _watch(self, source: _Source) -> None:
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
