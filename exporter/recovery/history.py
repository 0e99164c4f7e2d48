"""Attempt history as JSON Lines, so restarting the exporter does not reset the rails.

Each event is one line, flushed as it is written. On load, lines are replayed into per-target
records; a corrupt line is skipped with a warning. The file is then compacted (rewritten with
only what the rails still need), so it stays small.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from exporter.recovery.rails import Attempt, TargetRecord

__all__ = ["HistoryFile", "apply_event", "record_events"]

log = logging.getLogger(__name__)
_VERSION = 1


def apply_event(records: dict[str, TargetRecord], event: dict[str, Any]) -> None:
    """Replay one history event into the records (pure; raises on a malformed event)."""
    kind = event["event"]
    target = event["target"]
    if not isinstance(target, str):
        raise ValueError("target must be a string")
    record = records.setdefault(target, TargetRecord())
    if kind == "attempt":
        record.attempts.append(
            Attempt(
                started_at=float(event["started_at"]),
                rule=str(event.get("rule", "")),
                action=str(event.get("action", "")),
            )
        )
    elif kind == "outcome":
        started = float(event["started_at"])
        for attempt in reversed(record.attempts):
            if attempt.started_at == started:
                attempt.finished_at = float(event["finished_at"])
                attempt.result = str(event["result"])
                break
    elif kind == "exhausted":
        record.exhausted = True
        record.exhausted_at = float(event["at"])
    elif kind == "reset":
        record.attempts.clear()
        record.exhausted = False
        record.exhausted_at = None
    else:
        raise ValueError(f"unknown event {kind!r}")


def record_events(target: str, record: TargetRecord) -> list[dict[str, Any]]:
    """The minimal events that rebuild `record` (used for compaction)."""
    events: list[dict[str, Any]] = []
    for a in record.attempts:
        events.append(
            {
                "event": "attempt",
                "target": target,
                "started_at": a.started_at,
                "rule": a.rule,
                "action": a.action,
            }
        )
        if a.result is not None:
            events.append(
                {
                    "event": "outcome",
                    "target": target,
                    "started_at": a.started_at,
                    "finished_at": a.ended_at,
                    "result": a.result,
                }
            )
    if record.exhausted:
        events.append({"event": "exhausted", "target": target, "at": record.exhausted_at or 0.0})
    return events


class HistoryFile:
    """Append-only JSONL file; `None` path keeps history in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> dict[str, TargetRecord]:
        records: dict[str, TargetRecord] = {}
        if self.path is None or not self.path.exists():
            return records
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                    apply_event(records, event)
                except (ValueError, KeyError, TypeError, RecursionError) as exc:
                    log.warning(
                        "recovery history %s line %d skipped: %s",
                        self.path,
                        lineno,
                        type(exc).__name__,
                    )
        return records

    def append(self, event: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"v": _VERSION, **event}, separators=(",", ":"), sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            log.error("cannot write recovery history %s: %s", self.path, exc.strerror or exc)

    def rewrite(self, events: Iterable[dict[str, Any]]) -> None:
        """Atomically replace the file with `events` (compaction after load)."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as fh:
                for event in events:
                    line = json.dumps(
                        {"v": _VERSION, **event}, separators=(",", ":"), sort_keys=True
                    )
                    fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot compact recovery history %s: %s", self.path, exc.strerror or exc)
