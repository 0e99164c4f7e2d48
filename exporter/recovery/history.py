"""Attempt history as JSON Lines, so restarting the exporter does not reset the rails.

Each event is one line, fsynced by the shared JSON Lines writer (exporter.util.jsonl_file),
which retries after a full disk until the line is written: an attempt made while the disk was
full is still on it after space comes back, so a restart keeps its window and cooldown. On
load, the newest `max_bytes` of the file are replayed into per-target records (a file of
gigabytes costs no more); lines that cannot be replayed are skipped with one summarising
warning. The file is then compacted (rewritten with only what the rails still need).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from exporter.recovery.rails import Attempt, TargetRecord
from exporter.util.jsonl import TailReader
from exporter.util.jsonl_file import JsonlFile

__all__ = ["HistoryFile", "apply_event", "compact_events", "record_events"]

log = logging.getLogger(__name__)
_VERSION = 1
READ_FACTOR = 4
"""A load reads at most this many times `max_bytes` of the file's end."""


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


def compact_events(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The minimal events that rebuild what `lines` record (the size cap's compaction)."""
    records: dict[str, TargetRecord] = {}
    for event in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            apply_event(records, event)
    return [{"v": _VERSION, **e} for t, r in records.items() for e in record_events(t, r)]


class HistoryFile:
    """Append-only JSONL file through the shared writer (off the event loop, torn tail
    repaired, compacted past its size cap); `None` path keeps history in memory only."""

    def __init__(self, path: Path | None, max_bytes: int = 8 << 20) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.file = JsonlFile(path, max_bytes=max_bytes, compact=compact_events)

    def load(self) -> dict[str, TargetRecord]:
        records: dict[str, TargetRecord] = {}
        self.file.flush()  # what this process queued is part of the history
        if self.path is None or not self.path.exists():
            return records

        # the writer lets a compacted file grow to twice its size before compacting again
        reader = TailReader(self.path, READ_FACTOR * self.max_bytes)
        unusable: dict[str, int] = {}
        for event in reader.records():
            try:
                apply_event(records, event)
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                why = type(exc).__name__
                unusable[why] = unusable.get(why, 0) + 1
        reader.report("recovery history")
        if unusable:
            log.warning(
                "recovery history %s: %d event(s) skipped (%s)",
                self.path,
                sum(unusable.values()),
                ", ".join(f"{n} {why}" for why, n in sorted(unusable.items())),
            )
        return records

    def append(self, event: dict[str, Any]) -> None:
        self.file.append({"v": _VERSION, **event})

    def rewrite(self, events: Iterable[dict[str, Any]]) -> None:
        """Atomically replace the file with `events` (compaction after load)."""
        self.file.rewrite({"v": _VERSION, **event} for event in events)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
