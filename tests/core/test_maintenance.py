"""Maintenance (issue 22): an operator announces a target's maintenance through the CLI (which
calls the exporter's API, guarded like /-/reload), ends it early, or puts a window in the
config. During it the probes keep running and the state stays honest, the target is marked
(`llm_target_maintenance`, the API, the page), the recovery receiver never acts on it; when
it ends the target is judged on fresh results. The real exporter and the real CLI against
the simulated vLLM server over loopback. (No alert fires for it: promtool,
prometheus/tests/llm_target_maintenance_test.yml.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from exporter.config import Settings, TargetConfig
from exporter.config.maintenance import MaintenanceWindow
from exporter.engine.maintenance import MaintenanceBook
from exporter.simulate import FaultSpec, Simulator
from tests.recovery.helpers import AUTH, TOKEN, alert, calls, fast_rails, payload, recorder_rule
from tests.waiting import wait_for

from .live import running_exporter, scrape, value


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, awaited (the exporter it calls runs on this loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter.cli", "maintenance", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


def _settings(tmp_path: Path, url: str, **over: object) -> Settings:
    token = tmp_path / "hook-token"
    token.write_text(TOKEN + "\n")
    target = TargetConfig(
        name="qwen",
        url=url,
        thresholds={"failures_to_down": 1, "retry_interval": 0.1},
        checks={"engine": {"enabled": False}},
    )
    data: dict[str, object] = {
        "targets": [target],
        "default_interval": 0.3,
        "history_file": tmp_path / "history.jsonl",
        "recovery": {
            "enabled": True,
            "auth": {"token_file": str(token)},
            "rules": [recorder_rule(tmp_path / "calls.jsonl")],
            "rails": fast_rails(),
        },
    }
    data.update(over)
    return Settings(**data)  # type: ignore[arg-type]


async def _target(base: str) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(base + "/api/v1/targets/qwen")).json()


async def test_announced_maintenance_holds_off_recovery_keeps_probing_then_judges_afresh(
    sim: Simulator, tmp_path: Path
) -> None:
    async with running_exporter(_settings(tmp_path, sim.url)) as (_, base):

        async def state_is(want: str) -> bool:
            return (await _target(base))["state"] == want

        await wait_for(lambda: state_is("up"))
        started = await cli(
            "start", "qwen", "--for", "30m", "--reason", "driver upgrade", "--url", base
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "qwen in maintenance for 1800s" in started.stdout
        text = await scrape(base)
        assert value(text, "llm_target_maintenance", target="qwen") == 1.0
        view = await _target(base)
        assert view["maintenance"]["reason"] == "driver upgrade"
        assert view["maintenance"]["source"] == "api"
        async with httpx.AsyncClient() as c:
            page = (await c.get(base + "/")).text
        assert "in maintenance" in page and "driver upgrade" in page
        listed = await cli("list", "--url", base)
        assert listed.returncode == 0 and "qwen until" in listed.stdout, listed.stdout

        # the work breaks the server: the state says so (honest), probes keep running
        sim.set_fault(FaultSpec(kind="server_error"))
        await wait_for(lambda: state_is("down"), timeout=30)
        before = sim.stats.requests
        await wait_for(lambda: sim.stats.requests > before + 3, timeout=30)

        # an alert that reached the receiver anyway (a rule without the exclusion): no restart
        async with httpx.AsyncClient() as c:
            r = await c.post(base + "/hooks/alertmanager", headers=AUTH,
                             json=payload(alert(target="qwen")))  # fmt: skip
            assert r.status_code == 200, r.text

        async def skipped() -> bool:
            return bool(value(await scrape(base), "llm_recovery_attempts_total", target="qwen",
                              action="command", result="skipped_maintenance"))  # fmt: skip

        await wait_for(skipped, timeout=30)
        assert calls(tmp_path / "calls.jsonl") == []

        # ended early while still broken: judged afresh (unknown), then down on fresh results
        ended = await cli("end", "qwen", "--url", base)
        assert ended.returncode == 0, ended.stdout + ended.stderr
        view = await _target(base)
        assert view["maintenance"] is None
        assert value(await scrape(base), "llm_target_maintenance", target="qwen") is None
        reasons = [(t["to"], t["reason"]) for t in view["transitions"]]
        assert ("unknown", "maintenance_ended") in reasons
        await wait_for(lambda: state_is("down"), timeout=30)
        after = [(t["to"], t["reason"]) for t in (await _target(base))["transitions"]]
        assert after[-2:] == [("unknown", "maintenance_ended"), ("down", after[-1][1])]
        assert (await cli("end", "qwen", "--url", base)).returncode == 1  # not in maintenance now
        sim.clear_faults()
        await wait_for(lambda: state_is("up"), timeout=30)


async def test_maintenance_api_is_guarded_like_reload(sim: Simulator, tmp_path: Path) -> None:
    """With a reload token and `allow_loopback: false`, only the token may announce or end a
    maintenance (the CLI passes it with --token-file); reading stays open."""
    token = tmp_path / "reload-token"
    token.write_text("reload-s3cret-token\n")
    settings = _settings(
        tmp_path, sim.url, reload={"token_file": str(token), "allow_loopback": False}
    )
    async with running_exporter(settings) as (_, base):
        refused = await cli("start", "qwen", "--for", "5m", "--url", base)
        assert refused.returncode == 1 and "HTTP 403" in refused.stdout, refused.stdout
        assert (await _target(base))["maintenance"] is None
        ok = await cli("start", "qwen", "--for", "5m", "--url", base, "--token-file", str(token))
        assert ok.returncode == 0, ok.stdout
        async with httpx.AsyncClient() as c:
            assert (await c.delete(base + "/api/v1/maintenance/qwen")).status_code == 403
            r = await c.post(base + "/api/v1/maintenance", json={"target": "nope", "duration": 60},
                             headers={"Authorization": "Bearer reload-s3cret-token"})  # fmt: skip
            assert r.status_code == 404
            r = await c.post(base + "/api/v1/maintenance", json={"target": "qwen", "duration": "8d"},
                             headers={"Authorization": "Bearer reload-s3cret-token"})  # fmt: skip
            assert r.status_code == 400 and "7 days" in r.text
            r = await c.post(base + "/api/v1/maintenance", content=b"x" * 10_000,
                             headers={"Authorization": "Bearer reload-s3cret-token"})  # fmt: skip
            assert r.status_code == 413
            listed = (await c.get(base + "/api/v1/maintenance")).json()
        assert [w["target"] for w in listed["maintenance"]] == ["qwen"]


async def test_a_config_window_marks_the_target_and_can_be_ended_early(
    sim: Simulator, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    window = {"targets": ["qwen"], "start": (now - timedelta(minutes=1)).isoformat(),
              "duration": "1h", "reason": "planned upgrade"}  # fmt: skip
    async with running_exporter(_settings(tmp_path, sim.url, maintenance=[window])) as (_, base):
        view = await _target(base)
        assert view["maintenance"]["source"] == "config"
        assert view["maintenance"]["reason"] == "planned upgrade"
        assert value(await scrape(base), "llm_target_maintenance", target="qwen") == 1.0
        assert (await cli("end", "qwen", "--url", base)).returncode == 0

        async def ended() -> bool:  # the read view is a snapshot at most a second old
            return (await _target(base))["maintenance"] is None

        await wait_for(ended, timeout=10, what="the ended window to leave the view")


def test_window_book_expiry_and_end_early() -> None:
    book = MaintenanceBook()
    assert book.empty and book.active("a", 100.0) is None
    book.configure(
        [
            MaintenanceWindow(targets=["a"], start=datetime.fromtimestamp(100, UTC), duration=50),
            MaintenanceWindow(targets=["a"], start=datetime.fromtimestamp(300, UTC), duration=50),
        ]
    )
    assert book.active("a", 99.0) is None
    assert book.active("a", 120.0) is not None and book.active("b", 120.0) is None
    assert book.active("a", 150.0) is None  # the end is not inside
    ended = book.end("a", 120.0)
    assert ended is not None and ended.source == "config"
    assert book.active("a", 130.0) is None  # ended early
    assert book.active("a", 310.0) is not None  # the next window still comes
    book.announce("b", 1000.0, 60.0, "")
    assert book.active("b", 1059.0) is not None and book.active("b", 1060.0) is None
    with pytest.raises(ValueError):
        book.announce("b", 0.0, 8 * 86400.0, "")


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"start": "2026-12-07T22:00:00", "duration": 60}, "time zone"),
        ({"start": "2026-12-07T22:00:00Z"}, "either end or duration"),
        ({"start": "2026-12-07T22:00:00Z", "end": "2026-12-07T21:00:00Z"}, "end after it starts"),
        ({"start": "2026-12-07T22:00:00Z", "duration": "8d"}, "7 days"),
    ],
)
def test_config_window_refused_with_a_reason(window: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MaintenanceWindow(targets=["a"], **window)
