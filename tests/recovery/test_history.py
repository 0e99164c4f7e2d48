"""Attempt history: JSONL persistence, corrupt lines, compaction, and no restart storm on reload."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from pathlib import Path

import pytest

from exporter.recovery.history import HistoryFile
from tests.recovery.helpers import AUTH, FakeTargets, alert, calls, make_config, payload, running


def test_roundtrip_and_corrupt_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "h.jsonl"
    hist = HistoryFile(path)
    hist.append(
        {"event": "attempt", "target": "a", "started_at": 10.0, "rule": "r", "action": "command"}
    )
    hist.flush()  # written by the writer thread: on disk before the test's own lines
    with path.open("a") as fh:
        fh.write("{not json\n")
        fh.write('"a string"\n')
        fh.write('{"event": "attempt"}\n')
        fh.write('{"event": "teleport", "target": "a"}\n')
        fh.write("\n")
    hist.append(
        {
            "event": "outcome",
            "target": "a",
            "started_at": 10.0,
            "finished_at": 20.0,
            "result": "failed",
        }
    )
    hist.append({"event": "exhausted", "target": "a", "at": 21.0})
    with caplog.at_level(logging.WARNING):
        records = hist.load()
    # one summarising line per kind of trouble, not one per line
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert "2 line(s) skipped" in skipped[0] and "2 event(s) skipped" in skipped[1]
    rec = records["a"]
    assert rec.exhausted
    assert [(a.started_at, a.finished_at, a.result) for a in rec.attempts] == [(10, 20, "failed")]


def test_reset_event_clears(tmp_path: Path) -> None:
    hist = HistoryFile(tmp_path / "h.jsonl")
    hist.append({"event": "attempt", "target": "a", "started_at": 1.0})
    hist.append({"event": "exhausted", "target": "a", "at": 2.0})
    hist.append({"event": "reset", "target": "a", "at": 3.0, "by": "operator"})
    rec = hist.load()["a"]
    assert not rec.exhausted and rec.attempts == []


def test_each_line_is_on_disk_once_flushed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.jsonl"
    hist = HistoryFile(path)
    hist.append({"event": "attempt", "target": "a", "started_at": 1.0})
    hist.flush()  # appends are written (and fsynced) by a thread, off the event loop
    assert json.loads(path.read_text())["target"] == "a"


async def test_reload_prevents_a_restart_storm(tmp_path: Path) -> None:
    """Three failed attempts, exporter restarted: the next alert must not act again."""
    cfg = make_config(
        tmp_path,
        rails={
            "max_attempts": 3,
            "cooldown": 0,
            "backoff_base": 0,
            "backoff_max": 0,
            "verify_timeout": 0.05,
            "verify_interval": 0.01,
        },
    )
    log = tmp_path / "calls.jsonl"
    for i in range(3):
        targets = FakeTargets()  # always down: every attempt fails verification
        async with running(cfg, targets) as (svc, client, reg):
            r = await client.post(
                "/hooks/alertmanager", json=payload(alert(fingerprint=f"fp{i}")), headers=AUTH
            )
            assert r.status_code == 200
            await svc.drain()
            assert (
                reg.get_sample_value(
                    "llm_recovery_attempts_total",
                    {"target": "vllm", "action": "command", "result": "failed"},
                )
                == 1
            )
    assert len(calls(log)) == 3
    # a fresh process: history says 3 failures in the window, so it is exhausted
    async with running(cfg, FakeTargets()) as (svc, client, reg):
        assert reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 1
        ts = reg.get_sample_value("llm_recovery_last_attempt_timestamp_seconds", {"target": "vllm"})
        assert ts is not None and abs(ts - time.time()) < 600
        r = await client.post(
            "/hooks/alertmanager", json=payload(alert(fingerprint="new")), headers=AUTH
        )
        assert r.status_code == 200
        await svc.drain()
        assert (
            reg.get_sample_value(
                "llm_recovery_attempts_total",
                {"target": "vllm", "action": "command", "result": "skipped_exhausted"},
            )
            == 1
        )
    assert len(calls(log)) == 3


async def test_cooldown_survives_a_restart(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, rails={"cooldown": "1h", "verify_timeout": 0.05, "verify_interval": 0.01}
    )
    async with running(cfg, FakeTargets()) as (svc, client, _):
        await client.post("/hooks/alertmanager", json=payload(alert(fingerprint="a")), headers=AUTH)
        await svc.drain()
    async with running(cfg, FakeTargets()) as (svc, client, reg):
        await client.post("/hooks/alertmanager", json=payload(alert(fingerprint="b")), headers=AUTH)
        await svc.drain()
        assert (
            reg.get_sample_value(
                "llm_recovery_attempts_total",
                {"target": "vllm", "action": "command", "result": "skipped_cooldown"},
            )
            == 1
        )
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_compaction_keeps_the_file_small(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    old = time.time() - 10 * 86400
    with path.open("w") as fh:
        for i in range(500):
            fh.write(
                json.dumps({"event": "attempt", "target": "vllm", "started_at": old + i}) + "\n"
            )
    cfg = make_config(tmp_path)
    async with running(cfg, FakeTargets()):
        pass
    lines = path.read_text().splitlines()
    assert len(lines) == 1  # only the last attempt is kept for the cooldown


async def test_the_rails_survive_a_full_disk_and_a_restart(tmp_path: Path) -> None:
    """An attempt made while the disk is full is written once space is back: after a restart
    it still counts in the window and its cooldown still holds (issue 26)."""
    cfg = make_config(
        tmp_path, rails={"cooldown": "1h", "verify_timeout": 0.05, "verify_interval": 0.01}
    )
    full = {"on": True}

    def disk(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    async with running(cfg, FakeTargets()) as (svc, client, _):
        store = svc.history.file
        store.writer = disk
        await client.post("/hooks/alertmanager", json=payload(alert(fingerprint="a")), headers=AUTH)
        await svc.drain()
        store.flush()
        assert store.errors >= 1 and store.pending >= 2  # the attempt and its outcome wait
        full["on"] = False  # space is back
        store.flush()  # a retry (the timer's, a new line's or this one) writes what waits
        assert store.pending == 0 and store.problem is None
    async with running(cfg, FakeTargets()) as (svc, client, reg):
        status = svc.status()["targets"]["vllm"]
        assert status["attempts_in_window"] == 1 and status["next_allowed_at"] is not None
        await client.post("/hooks/alertmanager", json=payload(alert(fingerprint="b")), headers=AUTH)
        await svc.drain()
        assert (
            reg.get_sample_value(
                "llm_recovery_attempts_total",
                {"target": "vllm", "action": "command", "result": "skipped_cooldown"},
            )
            == 1
        )
    assert len(calls(tmp_path / "calls.jsonl")) == 1
