"""History durability: a torn last line is repaired, the file has a size cap, and one JSON
Lines writer (fsync off the event loop) serves the transition and the recovery histories."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from exporter.engine.history import HistoryWriter, read_history
from exporter.engine.state import State, Transition
from exporter.recovery.history import HistoryFile
from exporter.util.jsonl import TailReader
from exporter.util.jsonl_file import JsonlFile


def transition(i: int, target: str = "a") -> Transition:
    return Transition(float(i), target, State.UP, State.DOWN, "health_timeout", f"#{i}")


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    good = '{"detail":"#0","from":"up","reason":"r","target":"a","time":0.0,"to":"down"}\n'
    path.write_text(good + '{"detail":"#1","from":"up","tar')  # a crash mid-write
    writer = HistoryWriter(path)
    writer.append(transition(2))
    writer.close()
    assert [r["detail"] for r in read_history(path, 10)] == ["#0", "#2"]
    assert path.read_text().endswith("\n") and path.read_text().count("\n") == 2


def test_the_file_is_compacted_past_its_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    writer = HistoryWriter(path, max_bytes=8192)
    for i in range(2000):  # ~200 kB of flapping
        writer.append(transition(i))
    writer.close()
    assert path.stat().st_size <= 8192
    details = [r["detail"] for r in read_history(path, 10_000)]
    assert details[-1] == "#1999" and len(details) >= 20
    assert details == sorted(details, key=lambda d: int(d[1:]))  # newest kept, in order


def test_an_oversized_file_from_before_is_compacted_on_open(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    line = '{"detail":"old","from":"up","reason":"r","target":"a","time":0.0,"to":"down"}\n'
    path.write_text(line * 5000)
    writer = HistoryWriter(path, max_bytes=16384)
    writer.append(transition(1))
    writer.close()
    assert path.stat().st_size <= 16384
    assert read_history(path, 10)[-1]["detail"] == "#1"


def test_recovery_history_compaction_keeps_what_the_rails_need(tmp_path: Path) -> None:
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    full, capped = HistoryFile(big, max_bytes=1 << 30), HistoryFile(small, max_bytes=2048)
    events: list[dict[str, object]] = []
    for i in range(200):
        events.append({"event": "attempt", "target": f"t{i % 3}", "started_at": float(i)})
        events.append(
            {
                "event": "outcome",
                "target": f"t{i % 3}",
                "started_at": float(i),
                "finished_at": i + 0.5,
                "result": "failed",
            }
        )
        if i % 10 == 9:
            events.append({"event": "reset", "target": f"t{i % 3}", "at": i + 0.9})
    events.append({"event": "exhausted", "target": "t1", "at": 999.0})
    for event in events:
        full.append(event)
        capped.append(event)
    full.close()
    capped.close()
    assert small.stat().st_size < big.stat().st_size / 4
    assert small.stat().st_size <= 2 * 2048
    assert _summary(capped.load()) == _summary(full.load()) and len(_summary(full.load())) == 3


def _summary(records: dict[str, object]) -> dict[str, object]:
    return {
        t: (r.exhausted, [(a.started_at, a.finished_at, a.result) for a in r.attempts])  # type: ignore[attr-defined]
        for t, r in records.items()
    }


def test_writes_and_fsync_happen_off_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop appends; the disk is waited for by the writer thread only."""
    synced: list[threading.Thread] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(threading.current_thread())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    recovery = HistoryFile(tmp_path / "r.jsonl")
    writer.append(transition(1))
    recovery.append({"event": "attempt", "target": "a", "started_at": 1.0})
    writer.close()
    recovery.close()
    assert len(synced) >= 2
    assert all(t is not threading.current_thread() for t in synced)
    # one writer for both histories
    assert isinstance(writer.file, JsonlFile) and isinstance(recovery.file, JsonlFile)


def test_an_unwritable_history_is_logged_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    writer = HistoryWriter(blocker / "h.jsonl")  # a file where a directory should be
    for i in range(3):
        writer.append(transition(i))
    writer.close()
    assert TailReader(blocker, 1 << 20).records() == [] and writer.file.errors >= 1
