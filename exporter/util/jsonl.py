"""JSON Lines, the read side and the line format, shared by the transition history and the
recovery attempt history (the writer is `jsonl_file.py`). Imports nothing from the rest of the
package (any layer may use it).

A history is read from its end, newest line first, and never more than a byte budget of it:
a file of gigabytes (an old exporter's, a copied one, an attack) costs the start the same
milliseconds and megabytes as one within its size cap. Lines that are not JSON objects are
counted, not logged one by one: 200,000 of them make one warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "TailReader",
    "copy_tail",
    "dumps_line",
    "lines_backwards",
    "repair_tail",
    "replace_atomically",
    "write_all",
]

log = logging.getLogger(__name__)

Record = dict[str, Any]
BLOCK = 1 << 16


def dumps_line(record: Record) -> str:
    """One record as one line (ASCII escapes: nothing a target sent can break the encoder)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=True) + "\n"


def lines_backwards(path: Path, max_bytes: int) -> Iterator[bytes]:
    """The file's lines, newest first, from its last `max_bytes` only (a line cut by that
    budget is not yielded). Reads blocks of 64 KiB backwards: memory is one line and a block."""
    with path.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        floor = max(0, end - max_bytes)
        pos = end
        partial: list[bytes] = []  # pieces of the line being assembled, newest piece first
        while pos > floor:
            step = min(BLOCK, pos - floor)
            pos -= step
            fh.seek(pos)
            parts = fh.read(step).split(b"\n")
            if len(parts) == 1:
                partial.append(parts[0])
                continue
            partial.append(parts[-1])
            yield b"".join(reversed(partial))
            yield from reversed(parts[1:-1])
            partial = [parts[0]]
        if floor == 0 and partial:
            yield b"".join(reversed(partial))


class TailReader:
    """The JSON objects among a file's newest `max_bytes`, oldest first; `bad` counts the
    other lines, `cut` the bytes before the budget that were not read."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.bad = 0
        self.cut = 0

    def newest_first(self, limit: int | None = None) -> Iterator[Record]:
        """Objects newest first; stops after `limit` of them."""
        try:
            self.cut = max(0, self.path.stat().st_size - self.max_bytes)
        except FileNotFoundError:
            return
        found = 0
        for line in lines_backwards(self.path, self.max_bytes):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                self.bad += 1
                continue
            yield obj
            found += 1
            if limit is not None and found >= limit:
                return

    def records(self, limit: int | None = None) -> list[Record]:
        """The newest `limit` objects (all within the budget without one), oldest first."""
        out = list(self.newest_first(limit))
        out.reverse()
        return out

    def report(self, what: str) -> None:
        """One warning for everything that was skipped (none when nothing was)."""
        if self.bad:
            log.warning("%s %s: %d line(s) skipped: not JSON objects", what, self.path, self.bad)
        if self.cut:
            log.warning(
                "%s %s: %d bytes, only the newest %d read (older lines ignored)",
                what,
                self.path,
                self.cut + self.max_bytes,
                self.max_bytes,
            )


def copy_tail(path: Path, dest: Path, max_bytes: int) -> int:
    """Copy the whole lines among the last `max_bytes` of `path` into `dest` (compaction that
    needs no parsing); the bytes written."""
    with path.open("rb") as src:
        end = src.seek(0, os.SEEK_END)
        start = max(0, end - max_bytes)
        src.seek(start)
        data = src.read(end - start)
    if start > 0:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    data = data[: data.rfind(b"\n") + 1]  # a torn last line is not copied
    with dest.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return len(data)


def write_all(fd: int, data: bytes, write: Callable[[int, bytes], int] = os.write) -> None:
    """All of `data`, however many calls `write` takes (a short write is not an error)."""
    done = 0
    while done < len(data):
        done += write(fd, data[done:])


def replace_atomically(
    path: Path, data: bytes, write: Callable[[int, bytes], int] = os.write
) -> int:
    """Replace `path` by `data` (a fsynced temporary file, then a rename: a crash or a full
    disk leaves the old file whole); the bytes written."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, data, write)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return len(data)


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
            step = min(pos, BLOCK)
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
