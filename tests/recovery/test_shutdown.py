"""Stopping the exporter mid-recovery, and what the recovery log lines can carry."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.recovery.helpers import AUTH, FakeTargets, alert, make_config, payload, running
from tests.recovery.servers import Seen, stub_server
from tests.waiting import wait_for

TRAPPER = """
import pathlib, signal, sys, time
marks = pathlib.Path(sys.argv[1])
def on_term(*_):
    marks.write_text(marks.read_text() + "TERM\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
marks.write_text("started\\n")
time.sleep(60)
"""


async def test_stop_sends_sigterm_and_records_and_notifies_interrupted(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    script = tmp_path / "trap.py"
    script.write_text(TRAPPER)
    received: list[Seen] = []

    def ok(seen: Seen) -> web.Response:
        received.append(seen)
        return web.Response(status=200)

    async with stub_server(ok) as stub:
        rule = {
            "name": "restart",
            "match": {"alertnames": ["LLMTargetDown"]},
            "action": {"type": "command", "argv": [sys.executable, str(script), str(marks)]},
        }
        cfg = make_config(
            tmp_path,
            rules=[rule],
            notifications={"webhooks": [{"name": "hook", "url": stub.url}]},
        )
        async with running(cfg, FakeTargets()) as (svc, client, _):
            r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
            assert r.json()["accepted"] == 1
            await wait_for(lambda: marks.exists() and "started" in marks.read_text())
            await svc.stop()
            assert marks.read_text() == "started\nTERM\n"  # TERM first, not a bare KILL
            results = [entry["result"] for entry in svc.recent]
            assert results == ["interrupted"]
            history = [json.loads(line) for line in cfg.history_file.read_text().splitlines()]
            assert [e.get("result") for e in history if e["event"] == "outcome"] == ["interrupted"]
    events = [json.loads(r.body)["event"] for r in received]
    assert events == ["started", "interrupted"]


async def test_each_step_logs_one_line_and_labels_cannot_forge_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path)
    caplog.set_level(logging.INFO, logger="exporter.recovery")
    forged = "LLMTargetDown\nERROR forged line"
    async with running(cfg, FakeTargets()) as (svc, client, _):
        bad = alert(alertname=forged, target="nope", fingerprint="fp-forged")
        good = alert()
        r = await client.post("/hooks/alertmanager", json=payload(bad, good), headers=AUTH)
        assert r.json()["accepted"] == 1
        await svc.drain()
    messages = [rec.getMessage() for rec in caplog.records if rec.name == "exporter.recovery"]
    assert messages, "no recovery log lines"
    assert all("\n" not in m for m in messages), messages
    assert any("forged line" in m for m in messages)  # shown, on the same line
    for step in (
        "webhook accepted",  # one line for the delivery: its jobs and unmatched alerts in it
        "-> vllm by rule restart",
        "re-probe of vllm",
        "action started",
        "action ended",
        "verification of vllm",
    ):
        assert sum(step in m for m in messages) == 1, (step, messages)
