"""The transition history: JSON Lines, one flushed line per transition, so a crash loses none."""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import IO, Any

from exporter.engine.state import Transition
from exporter.util.text import clean_tree

__all__ = ["HistoryWriter", "read_history"]

log = logging.getLogger(__name__)


class HistoryWriter:
    """Appends transitions to a file; a file that cannot be written is logged, not fatal."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._broken = False

    def append(self, transition: Transition) -> None:
        if self.path is None or self._broken:
            return
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write(json.dumps(transition.as_dict(), separators=(",", ":")) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            self._broken = True
            log.warning(
                "cannot write history file %s (%s); history stays in memory",
                self.path,
                exc.strerror,
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_history(path: Path | None, keep: int) -> list[dict[str, Any]]:
    """The last `keep` well-formed records; damaged lines (a torn last write) are skipped."""
    if path is None or not path.exists():
        return []
    records: deque[dict[str, Any]] = deque(maxlen=keep)
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("target"), str):
                    # a file written before text was cleaned may hold what no view can encode
                    records.append(clean_tree(obj))
    except OSError as exc:
        log.warning("cannot read history file %s (%s)", path, exc.strerror)
    return list(records)
