"""The shipped Alertmanager config against a real Alertmanager and a real exporter whose
recovery is disabled (the default): critical alerts still reach the recovery route, and must
not turn into an error, a retry and a "Notify for alerts failed" line per alert (issue 17)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.core.live import value
from tests.e2e.configs import REPO, AlertmanagerAddresses, alertmanager_config, short_timings
from tests.e2e.procs import ProcessGroup, http_ok, wait_until
from tests.monitoring.tools import require_tool


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, str, ProcessGroup]]:
    alertmanager = require_tool("prometheus-alertmanager")
    exporter_port, am_port = free_port(), free_port()
    group = ProcessGroup(tmp_path / "logs")
    config = tmp_path / "llm-heartbeat.yml"
    config.write_text(  # recovery not configured: disabled, as shipped
        "targets:\n  - {name: qwen3-4b, url: 'http://127.0.0.1:9'}\n"
        f"history_file: {tmp_path / 'history.jsonl'}\n"
    )
    token = tmp_path / "token"
    token.write_text("anything\n")
    chat = tmp_path / "chat_url"
    closed = f"http://127.0.0.1:{free_port()}"
    chat.write_text(closed + "\n")
    shipped = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    addr = AlertmanagerAddresses(
        recovery_base=f"http://127.0.0.1:{exporter_port}",
        humans_webhook=closed,
        smarthost=f"127.0.0.1:{free_port()}",
        token_file=token,
        chat_url_file=chat,
    )
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alertmanager_config(shipped, addr, short_timings)))
    try:
        group.start(
            "exporter",
            [sys.executable, "-m", "exporter.cli", "run",
             "--config", str(config), "--listen", f"127.0.0.1:{exporter_port}"],
        )  # fmt: skip
        group.start(
            "alertmanager",
            [alertmanager, f"--config.file={am_config}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
        )  # fmt: skip
        exporter, am = f"http://127.0.0.1:{exporter_port}", f"http://127.0.0.1:{am_port}"
        wait_until(lambda: http_ok(f"{exporter}/-/healthy"), 60, "exporter up")
        wait_until(lambda: http_ok(f"{am}/-/ready"), 60, "Alertmanager ready")
        yield exporter, am, group
    finally:
        group.stop_all()


def _metric(url: str, name: str, **labels: str) -> float:
    return value(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels) or 0.0


def test_disabled_recovery_takes_critical_alerts_without_errors(
    stack: tuple[str, str, ProcessGroup],
) -> None:
    exporter, am, group = stack
    alert = {
        "labels": {"alertname": "LLMTargetDown", "severity": "critical", "target": "qwen3-4b"},
        "annotations": {"summary": "down"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
    # Alertmanager delivered it to the recovery route, and the exporter ignored it on purpose
    wait_until(
        lambda: _metric(exporter, "llm_alertmanager_webhooks_total", outcome="disabled") >= 1,
        60,
        "the recovery receiver got the alert",
    )
    sent = _metric(am, "alertmanager_notifications_total", integration="webhook")
    assert sent >= 1
    # ...with no failure. (The humans' e-mail and chat go to closed ports here and do fail:
    # those are counted per integration, so they cannot hide a webhook failure.)
    assert _metric(am, "alertmanager_notifications_failed_total", integration="webhook") == 0
    log = (group.log_dir / "alertmanager.log").read_text(errors="replace")
    assert not [
        line for line in log.splitlines() if "Notify" in line and "recovery-webhook" in line
    ], log
