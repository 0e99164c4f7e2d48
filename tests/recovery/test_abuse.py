"""The recovery receiver under abuse (issue 26): a target removed by a reload mid-recovery, a
webhook of thousands of alerts, a body trickled byte by byte, payloads of an unknown version or
with truncated alerts."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from exporter.recovery import TargetCheck
from tests.conftest import free_port
from tests.recovery.helpers import (
    AUTH,
    DOWN,
    TOKEN,
    FakeTargets,
    alert,
    calls,
    make_config,
    payload,
    running,
)


class Removable(FakeTargets):
    """FakeTargets whose removed targets behave as MonitorControl's do after a reload: gone
    from the names, and `target_url` raises KeyError (it indexes the monitor's targets)."""

    def target_url(self, name: str) -> str:
        if name not in self.names:
            raise KeyError(name)
        return self.url


def counted(reg: Any, result: str) -> float | None:
    return reg.get_sample_value(
        "llm_recovery_attempts_total", {"target": "vllm", "action": "command", "result": result}
    )


async def test_a_target_removed_during_the_reprobe_ends_as_interrupted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    targets = Removable()

    def reprobe_then_reload(name: str) -> TargetCheck:
        targets.names.remove(name)  # a reload drops the target while it is being re-probed
        return DOWN

    targets.checker = reprobe_then_reload
    async with running(make_config(tmp_path), targets) as (svc, client, reg):
        await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        await svc.drain()
        assert counted(reg, "interrupted") == 1
        assert "removed" in svc.recent[-1]["reason"]
        last = svc.status()["targets"]["vllm"]["last_attempt"]
        assert last is None or last["result"] is not None  # never `null` forever
    assert not any("recovery task failed" in r.getMessage() for r in caplog.records)
    assert calls(tmp_path / "calls.jsonl") == []  # nothing restarted a target no longer ours


async def test_a_target_removed_during_verification_ends_the_attempt_as_interrupted(
    tmp_path: Path,
) -> None:
    targets = Removable()
    seen = {"n": 0}

    def removed_after_the_action(name: str) -> TargetCheck:
        seen["n"] += 1
        if seen["n"] == 2:  # the first verification probe: a reload has removed it
            targets.names.remove(name)
        return DOWN

    targets.checker = removed_after_the_action
    cfg = make_config(tmp_path)
    async with running(cfg, targets) as (svc, client, reg):
        await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        await svc.drain()
        assert counted(reg, "interrupted") == 1 and not counted(reg, "failed")
        last = svc.status()["targets"]["vllm"]["last_attempt"]
        assert last["result"] == "interrupted" and last["finished_at"] is not None
    events = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [e["result"] for e in events if e["event"] == "outcome"] == ["interrupted"]
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_a_webhook_of_thousands_of_alerts_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = [alert(fingerprint=f"fp{i}", target=f"t{i % 7}") for i in range(3000)]
    alerts += [alert(fingerprint="ours", target="vllm")]
    async with running(make_config(tmp_path), FakeTargets(checker=lambda n: DOWN)) as (
        svc,
        client,
        _,
    ):
        with caplog.at_level(logging.INFO, logger="exporter.recovery"):
            r = await client.post("/hooks/alertmanager", json=payload(*alerts), headers=AUTH)
            assert r.status_code == 200 and r.json()["unmatched"] == 3000
            intake = [x for x in caplog.records if "alert" in x.getMessage().lower()]
        await svc.drain()
    assert len(intake) == 1, [x.getMessage() for x in intake[:5]]
    assert "3001 alert(s)" in intake[0].getMessage()


@pytest.mark.parametrize(
    ("version", "truncated", "said"),
    [("3", 0, "version"), ("x", 0, "version"), ("4", 5, "truncated")],
)
async def test_an_unknown_version_or_truncated_alerts_are_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, version: str, truncated: int, said: str
) -> None:
    body = payload(alert(), truncated=truncated)
    body["version"] = version
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, reg):
        with caplog.at_level(logging.WARNING, logger="exporter.recovery"):
            r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        await svc.drain()
        assert r.status_code == 200
        assert said in " ".join(r.json()["warnings"])
        assert any(said in x.getMessage() for x in caplog.records if x.levelno >= logging.WARNING)
        assert reg.get_sample_value("llm_alertmanager_webhook_anomalies_total", {"kind": said})
    ok = payload(alert(fingerprint="other"))
    async with running(make_config(tmp_path), FakeTargets()) as (
        svc,
        client,
        _,
    ):
        r = await client.post("/hooks/alertmanager", json=ok, headers=AUTH)
        assert "warnings" not in r.json()
        await svc.drain()


async def test_a_body_trickled_byte_by_byte_is_cut_off(tmp_path: Path) -> None:
    """A real socket: the receiver behind uvicorn, a client that sends the headers, then one
    byte every 3 s. The receiver answers 408 and closes once the body deadline passes."""
    cfg = make_config(tmp_path, body_timeout=1.0)
    async with running(cfg, FakeTargets()) as (svc, _client, _):
        from starlette.applications import Starlette

        from exporter.recovery.api import build_routes

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=build_routes(svc)),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.02)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps(payload(alert())).encode()
            writer.write(
                b"POST /hooks/alertmanager HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            await writer.drain()
            answer = b""
            sent = 0
            loop = asyncio.get_running_loop()
            started = loop.time()
            while sent < len(body) and loop.time() - started < 30:
                writer.write(body[sent : sent + 1])
                sent += 1
                with __import__("contextlib").suppress(ConnectionError):
                    await writer.drain()
                try:
                    answer += await asyncio.wait_for(reader.read(4096), 3.0)
                except TimeoutError:
                    continue
                if answer:
                    break
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert sent < 10  # cut off after a few bytes, not after the whole body
            writer.close()
            assert svc.stats.webhooks.get("invalid") == 1
        finally:
            server.should_exit = True
            await serving
