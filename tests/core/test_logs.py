"""Logs a pipeline can parse: JSON lines carry the transition's fields, and go to the log file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from exporter.config import Settings, TargetConfig
from exporter.engine.history import HistoryWriter
from exporter.engine.monitor import Monitor
from exporter.logs import setup_logging
from exporter.probes.results import Check, ProbeResult, Reason


def test_json_log_file_has_one_parsable_line_per_transition(tmp_path: Path) -> None:
    log_file = tmp_path / "exporter.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("json", "info", log_file)
        settings = Settings(
            targets=[
                TargetConfig(
                    name="t",
                    url="http://127.0.0.1:9",
                    checks={"models": {"enabled": False}, "chat": {"enabled": False}},
                )
            ]
        )
        monitor = Monitor(settings, HistoryWriter(None), clock=lambda: 1000.0)
        for _ in range(3):
            monitor.record(
                "t",
                ProbeResult(
                    Check.HEALTH, False, 0.01, 1000.0, None, Reason.CONNECT_ERROR, "refused"
                ),
            )
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    [event] = [x for x in lines if x.get("event") == "transition"]
    assert event["level"] == "warning" and event["t_to"] == "down" and event["t_target"] == "t"
    assert "refused" in event["message"] and event["time"].endswith("Z")
