"""Secrets (bearer token, SMTP password, header files, URL credentials) never reach logs,
metrics, status or responses."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from tests.conftest import free_port
from tests.recovery.helpers import AUTH, TOKEN, FakeTargets, alert, make_config, payload, running
from tests.recovery.servers import stub_server

ORCH_SECRET = "orch-secret-7f3a9c"
HOOK_SECRET = "hook-secret-b21e77"
SMTP_SECRET = "smtp-secret-c0ffee"
URL_SECRET = "url-pass-99d1"


async def test_no_secret_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "orch").write_text(f"Bearer {ORCH_SECRET}\n")
    (tmp_path / "hook").write_text(HOOK_SECRET)
    (tmp_path / "smtp").write_text(SMTP_SECRET)
    async with stub_server(lambda seen: web.Response(status=500, text=str(seen.headers))) as stub:
        rules = [
            {
                "name": "orch",
                "match": {"alertnames": ["Orch"]},
                "action": {
                    "type": "http",
                    "url": stub.url + "/restart",
                    "header_files": {"Authorization": str(tmp_path / "orch")},
                },
            },
            {
                "name": "cmd",
                "match": {"alertnames": ["Cmd"]},
                "action": {
                    "type": "command",
                    "argv": [
                        sys.executable,
                        "-c",
                        "import os; print(os.environ); raise SystemExit(1)",
                    ],
                },
            },
        ]
        cfg = make_config(
            tmp_path,
            rules=rules,
            notifications={
                "retries": 1,
                "retry_delay": 0,
                "webhooks": [
                    {
                        "name": "hook",
                        "url": stub.url + "/notify",
                        "header_files": {"X-Token": str(tmp_path / "hook")},
                    }
                ],
                "email": [
                    {
                        "name": "mail",
                        "host": "127.0.0.1",
                        "port": free_port(),
                        "security": "none",
                        "username": "u",
                        "password_file": str(tmp_path / "smtp"),
                        "from": "a@example.org",
                        "to": ["b@example.org"],
                        "timeout": 2,
                    }
                ],
            },
        )
        targets = FakeTargets(url=f"http://admin:{URL_SECRET}@127.0.0.1:{free_port()}")
        with caplog.at_level(logging.DEBUG):
            async with running(cfg, targets) as (svc, client, reg):
                bad = await client.post(
                    "/hooks/alertmanager",
                    json=payload(alert()),
                    headers={"Authorization": f"Bearer {TOKEN}x"},
                )
                assert bad.status_code == 401
                for name, fp in (("Orch", "1"), ("Cmd", "2")):
                    r = await client.post(
                        "/hooks/alertmanager",
                        json=payload(alert(alertname=name, fingerprint=fp)),
                        headers=AUTH,
                    )
                    assert r.status_code == 200
                await svc.drain()
                assert (
                    reg.get_sample_value(
                        "llm_recovery_attempts_total",
                        {"target": "vllm", "action": "http", "result": "failed"},
                    )
                    == 1
                )
                assert (
                    reg.get_sample_value(
                        "llm_notifications_total", {"channel": "hook", "result": "failed"}
                    )
                    >= 1
                )
                status = (await client.get("/api/v1/recovery", headers=AUTH)).text
                metrics = generate_latest(reg).decode()
        # the orchestrator stand-in did get the secret header: it was really used
        assert any(ORCH_SECRET in r.headers.get("Authorization", "") for r in stub.requests)
        assert any(r.headers.get("X-Token") == HOOK_SECRET for r in stub.requests)
    texts = {"logs": caplog.text, "status": status, "metrics": metrics, "401 body": bad.text}
    for secret in (TOKEN, ORCH_SECRET, HOOK_SECRET, SMTP_SECRET, URL_SECRET):
        for where, text in texts.items():
            assert secret not in text, f"{secret!r} leaked into {where}"
    assert "failed" in caplog.text  # the failures were logged, just without secrets
