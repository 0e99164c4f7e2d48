"""The one JSON Lines writer: the transition history and the recovery attempt history both
use it. Imports nothing from the rest of the package (any layer may use it).

- appends are queued to one writer thread per file (write, flush, fsync there): a slow or
  full disk never stalls the event loop, and lines keep their order;
- a torn last line (a crash or a full disk mid-write) is cut off before the first append,
  so the next record cannot land on it and be lost with it;
- past `max_bytes` the file is compacted (`compact` keeps what still matters) and atomically
  replaced, so it cannot grow without bound nor take seconds to read at start.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["JsonlFile", "dumps_line", "keep_newest", "read_numbered", "read_records", "repair_tail"]

log = logging.getLogger(__name__)

Record = dict[str, Any]
Compact = Callable[[list[Record]], list[Record]]
_STOP = object()


def dumps_line(record: Record) -> str:
    """One record as one line (ASCII escapes: nothing a target sent can break the encoder)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=True) + "\n"


def read_records(path: Path, on_bad: Callable[[int], None] | None = None) -> Iterator[Record]:
    """The JSON objects of the file in order; other lines (a torn write) are skipped."""
    for _lineno, record in read_numbered(path, on_bad):
        yield record


def read_numbered(
    path: Path, on_bad: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Record]]:
    """(line number, object) for each JSON object line; `on_bad(lineno)` for the others."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                obj = None
            if isinstance(obj, dict):
                yield lineno, obj
            elif on_bad is not None:
                on_bad(lineno)


def repair_tail(path: Path) -> bool:
    """Cut a last line that has no newline (a torn write); True if something was cut."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0:
        return False
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        pos = size
        keep = 0
        while pos > 0 and not keep:  # find the last newline, reading backwards
            step = min(pos, 1 << 16)
            pos -= step
            fh.seek(pos)
            idx = fh.read(step).rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("%s: cut a torn last line (%d bytes)", path, size - keep)
    return True


def keep_newest(max_bytes: int) -> Compact:
    """A compaction that keeps the newest records that fit in `max_bytes`."""

    def compact(records: list[Record]) -> list[Record]:
        kept: list[Record] = []
        size = 0
        for record in reversed(records):
            size += len(dumps_line(record))
            if size > max_bytes:
                break
            kept.append(record)
        return kept[::-1]

    return compact


class _Rewrite:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.done = threading.Event()


class JsonlFile:
    """An append-only JSON Lines file; `path=None` keeps nothing. Failures are logged, never
    raised: history is worth keeping, not worth stopping the monitor for."""

    def __init__(
        self, path: Path | None, *, max_bytes: int = 8 << 20, compact: Compact | None = None
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.compact = compact or keep_newest(max_bytes // 2)
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._size = 0
        self._limit = max_bytes
        self._broken = False

    # ---- the caller's side (any thread, the event loop included: never waits for the disk)
    def append(self, record: Record) -> None:
        if self.path is None or self._broken:
            return
        self._put(dumps_line(record))

    def rewrite(self, records: Iterable[Record]) -> None:
        """Atomically replace the file's content (compaction after a load); waits for it."""
        if self.path is None:
            return
        job = _Rewrite([dumps_line(r) for r in records])
        self._put(job)
        job.done.wait(30)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued line is on disk (tests, shutdown)."""
        if self._thread is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _put(self, item: object) -> None:
        with self._lock:
            if self._thread is None:
                assert self.path is not None
                self._thread = threading.Thread(
                    target=self._run, name=f"jsonl:{self.path.name}", daemon=True
                )
                self._thread.start()
                _OPEN.add(self)
            self._queue.put(item)

    # ---- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        fh: IO[str] | None = None
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                if fh is not None and isinstance(item, _Rewrite):
                    fh.close()
                    fh = None
                try:
                    fh = self._handle(item, fh)
                except OSError as exc:
                    if not self._broken:
                        log.warning(
                            "cannot write %s (%s); history stays in memory",
                            self.path,
                            exc.strerror or exc,
                        )
                    self._broken = True
                finally:
                    if isinstance(item, _Rewrite):
                        item.done.set()
        finally:
            if fh is not None:
                fh.close()

    def _handle(self, item: object, fh: IO[str] | None) -> IO[str] | None:
        if isinstance(item, _Rewrite):
            self._replace(item.lines)
            return None
        if self._broken:
            return fh
        if fh is None:
            fh = self._open()
        line = str(item)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
        self._size += len(line)
        if self._size > self._limit:
            fh.close()
            self._compact()
            return None
        return fh

    def _open(self) -> IO[str]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        fh = self.path.open("a", encoding="utf-8")
        self._size = fh.tell()
        if self._size > self._limit:
            fh.close()
            self._compact()
            fh = self.path.open("a", encoding="utf-8")
        return fh

    def _compact(self) -> None:
        assert self.path is not None
        before = self._size
        self._replace([dumps_line(r) for r in self.compact(list(read_records(self.path)))])
        # a compaction that frees little would run again at once: then allow twice as much
        self._limit = max(self.max_bytes, 2 * self._size)
        log.info("%s compacted: %d -> %d bytes", self.path, before, self._size)

    def _replace(self, lines: list[str]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._size = sum(len(line) for line in lines)


# files with a writer thread: written out at exit (their threads are daemons)
_OPEN: weakref.WeakSet[JsonlFile] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for file in list(_OPEN):
        file.close()
