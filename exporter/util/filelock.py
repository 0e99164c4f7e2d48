"""One writer per history file: an exclusive `flock` on `<file>.lock`, held while the writer
lives. A second exporter on the same file would lose records (one compacts and replaces the
file while the other appends to the replaced inode); it is refused with a clear error instead.

The lock is a sidecar file, not the history itself, because compaction replaces the history
(a lock on the old inode would not exclude a writer of the new one). The kernel drops the lock
when the process ends, however it ends: a stale lock file is harmless.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from exporter.errors import HistoryInUse

__all__ = ["WriterLock"]


class WriterLock:
    """An exclusive, non-blocking lock for writing `path`; `acquire` raises HistoryInUse."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self.target = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise HistoryInUse(
                f"{self.target}: another llm-heartbeat writes this history file{who}; "
                "give each exporter its own history_file"
            ) from None
        except OSError:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
