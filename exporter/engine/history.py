"""The transition history: JSON Lines, one fsynced line per transition, so a crash loses none
(written off the event loop by exporter.util.jsonl_file, which also bounds the file's size,
retries after a failed write and refuses a second writer)."""

from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path
from typing import Any

from exporter.engine.state import Transition
from exporter.util.jsonl import TailReader
from exporter.util.jsonl_file import JsonlFile
from exporter.util.text import clean_tree

__all__ = ["HistoryWriter", "read_history"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 << 20


class HistoryWriter:
    """Appends transitions to a file through the shared JSON Lines writer (fsynced in its
    thread, torn tail repaired, compacted past `max_bytes`); a file that cannot be written
    is counted and retried, not fatal."""

    def __init__(self, path: Path | None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.file = JsonlFile(path, max_bytes=max_bytes)

    def append(self, transition: Transition) -> None:
        self.file.append(transition.as_dict())

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_history(
    path: Path | None, keep: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[dict[str, Any]]:
    """The last `keep` well-formed records, read from the end of the file (never more than
    `max_bytes` of it, whatever its size); damaged lines are skipped with one warning."""
    if path is None or not path.exists():
        return []
    reader = TailReader(path, max_bytes)
    try:
        wanted = (r for r in reader.newest_first() if isinstance(r.get("target"), str))
        found = list(islice(wanted, keep))  # stops reading once `keep` are found
    except OSError as exc:
        log.warning("cannot read history file %s (%s)", path, exc.strerror)
        return []
    if reader.bad:
        log.warning("history file %s: %d line(s) skipped: not JSON objects", path, reader.bad)
    # a file written before text was cleaned may hold what no view can encode
    return [clean_tree(r) for r in reversed(found)]
