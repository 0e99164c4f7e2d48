"""The one JSON Lines writer: the transition history and the recovery attempt history both
use it. Imports nothing above `util` (any layer may use it).

- appends are queued to one writer thread per file (write, fsync there): a slow or full disk
  never stalls the event loop, and lines keep their order;
- the writer never gives up: a failed write (a full disk, a quota, an I/O error) keeps its
  lines in memory (bounded), cuts the bytes it half wrote, counts the error, and retries
  every `retry_interval` and with each new line; when space comes back everything queued is
  written, in order. `errors`, `pending` and `problem` say how it goes (metric, /-/ready);
- one writer per file: the first write takes `WriterLock` (a second exporter is refused);
- a torn last line (a crash mid-write) is cut off before the first append;
- past `max_bytes` the file is compacted from its tail only (never read whole) and
  atomically replaced, so it cannot grow without bound.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from exporter.util.filelock import WriterLock
from exporter.util.jsonl import (
    TailReader,
    copy_tail,
    dumps_line,
    repair_tail,
    replace_atomically,
    write_all,
)

__all__ = ["Compact", "JsonlFile"]

log = logging.getLogger("exporter.util.jsonl")

Record = dict[str, Any]
Compact = Callable[[list[Record]], list[Record]]
Writer = Callable[[int, bytes], int]
_STOP = object()
_RETRY = object()


class _Rewrite:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.done = threading.Event()


class JsonlFile:
    """An append-only JSON Lines file; `path=None` keeps nothing. Failures are counted and
    retried, never raised: history is worth keeping, not worth stopping the monitor for.
    `write` is the seam through which every byte goes (tests inject a full disk there)."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_bytes: int = 8 << 20,
        compact: Compact | None = None,
        retry_interval: float = 5.0,
        max_pending: int = 10_000,
        write: Writer = os.write,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.compact = compact
        self.retry_interval = retry_interval
        self.lock = WriterLock(path) if path is not None else None
        self.errors = 0
        """Failed writes (each retry that fails counts)."""
        self.dropped = 0
        """Lines given up because more than `max_pending` waited for the disk."""
        self.problem: str | None = None
        """Why the last write failed; None once a write succeeded again."""
        self.writer = write
        self._pending: collections.deque[bytes] = collections.deque()
        self._max_pending = max_pending
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._limit = max_bytes

    @property
    def pending(self) -> int:
        """Lines waiting for the disk."""
        return len(self._pending)

    def claim(self) -> None:
        """Take the file's writer lock now (at start, for a clear error); HistoryInUse."""
        if self.lock is not None:
            self.lock.acquire()

    # ---- the caller's side (any thread, the event loop included: never waits for the disk)
    def append(self, record: Record) -> None:
        if self.path is not None:
            self._put(dumps_line(record).encode("ascii"))

    def rewrite(self, records: Iterable[Record]) -> None:
        """Atomically replace the file's content (compaction after a load); waits for it."""
        if self.path is None:
            return
        job = _Rewrite([dumps_line(r) for r in records])
        self._put(job)
        job.done.wait(30)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued line had its try at the disk (tests, shutdown)."""
        if self._thread is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (one last try), then stop the writer thread."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        if self.lock is not None:
            self.lock.release()

    def _put(self, item: object) -> None:
        with self._guard:
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
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.retry_interval if self._pending else None)
                except queue.Empty:
                    item = _RETRY
                if item is _STOP:
                    self._write_pending()
                    if self._pending:
                        log.error(
                            "%s: %d record(s) could not be written before the exporter stopped",
                            self.path,
                            len(self._pending),
                        )
                    return
                self._take(item)
        finally:
            self._close_fd()

    def _take(self, item: object) -> None:
        """One queued item; nothing escapes (a bug or MemoryError must not end the thread)."""
        try:
            if isinstance(item, threading.Event):
                self._write_pending()
                item.set()
            elif isinstance(item, _Rewrite):
                try:
                    self._write_pending()
                    self._close_fd()
                    self._replace(item.lines)
                except Exception as exc:
                    self._failed(exc)
                finally:
                    item.done.set()
            else:
                if isinstance(item, bytes):
                    if len(self._pending) >= self._max_pending:
                        self._pending.popleft()
                        self.dropped += 1
                    self._pending.append(item)
                self._write_pending()
        except Exception as exc:
            self._failed(exc)

    def _write_pending(self) -> None:
        if not self._pending:
            return
        try:
            if self._fd is None:
                self._fd = self._open()
            data = b"".join(self._pending)
            write_all(self._fd, data, self.writer)
            os.fsync(self._fd)
        except Exception as exc:
            self._failed(exc)
            self._cut_back()
            return
        self._size += len(data)
        self._pending.clear()
        if self.problem is not None:
            log.warning("%s is written again (%d error(s) so far)", self.path, self.errors)
            self.problem = None
        if self._size > self._limit:
            self._close_fd()
            self._compact_safely()

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        why = why or type(exc).__name__
        if self.problem is None:
            log.warning(
                "cannot write %s (%s); %d record(s) kept in memory, retrying every %gs",
                self.path,
                why,
                len(self._pending),
                self.retry_interval,
            )
        self.problem = str(why)

    def _cut_back(self) -> None:
        """Cut what a failed write left half-written, so a retry starts on a line boundary."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
        self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _open(self) -> int:
        assert self.path is not None
        self.claim()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o644)
        self._size = os.fstat(fd).st_size
        if self._size > self._limit:
            os.close(fd)
            self._compact_safely()
            fd = os.open(self.path, flags, 0o644)
            self._size = os.fstat(fd).st_size
        return fd

    def _compact_safely(self) -> None:
        """Compact; a failure (a full disk for the copy) leaves the file as it was."""
        try:
            self._compact()
        except Exception as exc:
            self._failed(exc)
            self._limit = self._size + self.max_bytes  # try again after as much growth

    def _compact(self) -> None:
        assert self.path is not None
        before = self._size
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            if self.compact is None:  # keep the newest half: whole lines, nothing parsed
                self._size = copy_tail(self.path, tmp, self.max_bytes // 2)
                os.replace(tmp, self.path)
            else:
                records = TailReader(self.path, 4 * self.max_bytes).records()
                self._replace([dumps_line(r) for r in self.compact(records)])
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        # a compaction that frees little would run again at once: then allow twice as much
        self._limit = max(self.max_bytes, 2 * self._size)
        log.info("%s compacted: %d -> %d bytes", self.path, before, self._size)

    def _replace(self, lines: list[str]) -> None:
        assert self.path is not None
        self.claim()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = replace_atomically(self.path, "".join(lines).encode("ascii"), self.writer)


# files with a writer thread: written out at exit (their threads are daemons)
_OPEN: weakref.WeakSet[JsonlFile] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for file in list(_OPEN):
        file.close()
