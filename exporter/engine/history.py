"""The transition history: JSON Lines, one fsynced line per transition, so a crash loses none
(written off the event loop by exporter.util.jsonl, which also bounds the file's size)."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

from exporter.engine.state import Transition
from exporter.util.jsonl import JsonlFile, read_records
from exporter.util.text import clean_tree

__all__ = ["HistoryWriter", "read_history"]

log = logging.getLogger(__name__)


class HistoryWriter:
    """Appends transitions to a file through the shared JSON Lines writer (fsynced in its
    thread, torn tail repaired, compacted past `max_bytes`); a file that cannot be written
    is logged, not fatal."""

    def __init__(self, path: Path | None, max_bytes: int = 8 << 20) -> None:
        self.path = path
        self.file = JsonlFile(path, max_bytes=max_bytes)

    def append(self, transition: Transition) -> None:
        self.file.append(transition.as_dict())

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_history(path: Path | None, keep: int) -> list[dict[str, Any]]:
    """The last `keep` well-formed records; damaged lines (a torn last write) are skipped."""
    if path is None or not path.exists():
        return []
    records: deque[dict[str, Any]] = deque(maxlen=keep)
    try:
        for obj in read_records(path):
            if isinstance(obj.get("target"), str):
                # a file written before text was cleaned may hold what no view can encode
                records.append(clean_tree(obj))
    except OSError as exc:
        log.warning("cannot read history file %s (%s)", path, exc.strerror)
    return list(records)
