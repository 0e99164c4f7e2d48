"""The two kinds of source: file-SD files and HTTP-SD endpoints. Each keeps its last good list;
an error is logged and counted (`llm_discovery_errors_total{source}`), never applied.

File-SD files are watched by polling their modification times (no inotify dependency), and
re-read every `refresh_interval` anyway. HTTP-SD is polled every `refresh_interval` with a
timeout and a bounded body.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from exporter.config import FileSDConfig, HTTPSDConfig, TargetConfig
from exporter.discovery.groups import Group, decode_document, parse_groups, targets_from_groups
from exporter.discovery.stats import DiscoveryStats
from exporter.errors import InputError, SDFormatError
from exporter.util.http import read_decoded
from exporter.util.net import redact_url

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    import httpx

__all__ = ["FileSDSource", "HTTPSDSource", "Source", "read_error", "read_file_sd"]

log = logging.getLogger("exporter.discovery")

C = TypeVar("C", FileSDConfig, HTTPSDConfig)

_SETTLE_MAX = 1.0
"""Seconds a changed file-SD file must stay unchanged before it is read (at most)."""
_SETTLE_ROUNDS = 10
"""A file that keeps changing is read after this many settle delays anyway."""


def read_file_sd(path: Path) -> list[Group]:
    """One file-SD file's groups; raises whatever reading or parsing it raises."""
    return parse_groups(decode_document(path.read_text(encoding="utf-8"), path.suffix.lower()))


def read_error(exc: Exception) -> str:
    """What a failed read says: our own errors' words, the OS's words, else the type's name
    (a foreign exception's text may echo the document)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, InputError):  # SDFormatError, BodyTooLarge: safe to show by contract
        return str(exc)
    return type(exc).__name__


class Source(Generic[C]):
    """A source's last good target list; `refresh()` says whether it changed."""

    name: str
    config: C

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


class FileSDSource(Source[FileSDConfig]):
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
                files[path] = read_file_sd(path)
            except Exception as exc:  # any failure is a failed read, never fatal (issue 26)
                failed.append(f"{path}: {read_error(exc)}")
                if path in self._files:
                    files[path] = self._files[path]
        self._files = files
        for message in failed:
            self._failed(message)
        groups = [g for path in sorted(files) for g in files[path]]
        targets, problems = targets_from_groups(groups, self.config.template)
        return self._publish(targets, problems)

    async def poll(self, *, force: bool = False) -> bool:
        """One look: re-read if the files changed (or `force`); whether the targets changed.

        A change is read only once the files have stopped changing for a settle delay: a
        writer that truncates, then writes (two writes) is not read in between, where an empty
        file would remove every target and its state (they would come back as unknown)."""
        if not force and self.signature() == self._signature:
            return False
        await self.settle()
        return self.refresh_now()

    async def settle(self) -> None:
        """Wait until two looks a settle delay apart see the same files (bounded)."""
        delay = min(self.config.watch_interval, _SETTLE_MAX)
        last = self.signature()
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(delay)
            now = self.signature()
            if now == last:
                return
            last = now

    async def run(self, on_change: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.config.refresh_interval
        while True:
            await asyncio.sleep(self.config.watch_interval)
            due = loop.time() >= next_full
            if due:
                next_full = loop.time() + self.config.refresh_interval
            if await self.poll(force=due):
                on_change()


class HTTPSDSource(Source[HTTPSDConfig]):
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
            "Accept-Encoding": "gzip, deflate",  # what read_decoded can cap as it decodes
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
                return await read_decoded(response, limit)
            finally:
                await response.aclose()

    async def refresh(self) -> bool:
        import httpx  # with the first fetch: not at start

        where = redact_url(self.config.url)
        try:
            body = await self.fetch()
            groups = parse_groups(decode_document(body.decode("utf-8"), ".json"))
        except TimeoutError:
            self._failed(f"{where}: no answer within {self.config.timeout:g}s")
            return False
        except httpx.HTTPError as exc:
            self._failed(f"{where}: {type(exc).__name__}")
            return False
        except Exception as exc:  # any failure is a failed read, never fatal (issue 26)
            self._failed(f"{where}: {read_error(exc)}")
            return False
        targets, problems = targets_from_groups(groups, self.config.template)
        return self._publish(targets, problems)

    async def run(self, on_change: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_interval)
            if await self.refresh():
                on_change()
