"""The command action: no shell, fixed LLMHB_* variables, process-group kill, capped output."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from exporter.config.recovery import CommandAction, SystemdAction
from exporter.recovery.actions import ENV_VARS, ActionContext, run_action
from tests.recovery.helpers import (
    AUTH,
    RECORDER,
    FakeTargets,
    alert,
    calls,
    make_config,
    payload,
    running,
)


def ctx(**labels: str) -> ActionContext:
    return ActionContext(
        target="vllm",
        target_url="http://127.0.0.1:8000",
        rule="restart",
        alertname="LLMTargetDown",
        fingerprint="abc",
        starts_at="2025-01-01T10:00:00+00:00",
        labels={"alertname": "LLMTargetDown", "target": "vllm", **labels},
    )


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_shell_metacharacters_in_labels_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTER_SECRET", "do-not-leak")
    pwned = tmp_path / "pwned"
    evil = f"$(touch {pwned}); `touch {pwned}` && touch {pwned} | rm -rf / ; echo $PATH"
    short_evil = "$(id);`id`|id&&id"
    log = tmp_path / "calls.jsonl"
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, _):
        body = payload(
            alert(
                fingerprint=short_evil,  # Alertmanager fingerprints are short; the model caps them
                instance=evil,
                path="/tmp/evil-bin",
                PATH="/tmp/evil-bin",
                LD_PRELOAD="/tmp/evil.so",
                LLMHB_TARGET="other",
            )
        )
        body["alerts"][0]["labels"]["alertname"] = "LLMTargetDown"
        r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        assert r.json().get("accepted") == 1, r.text
        await svc.drain()
    [call] = calls(log)
    assert call["argv"] == [
        str(RECORDER),
        str(log),
    ]  # exactly the configured argv (argv[0] = script)
    env = call["env"]
    assert not pwned.exists()
    assert env["PATH"] == os.environ["PATH"]
    assert "LD_PRELOAD" not in env and "path" not in env and "instance" not in env
    assert "EXPORTER_SECRET" not in env
    assert env["LLMHB_TARGET"] == "vllm"  # from the matched target, not a label of that name
    assert env["LLMHB_FINGERPRINT"] == short_evil  # data stays data
    assert env["LLMHB_ALERTNAME"] == "LLMTargetDown"
    assert env["LLMHB_TARGET_URL"] == "http://127.0.0.1:9"
    assert env["LLMHB_SEVERITY"] == "critical"
    assert evil in env["LLMHB_LABELS_JSON"]
    extra = {k for k in env if k.startswith("LLMHB_")} - set(ENV_VARS)
    assert extra == set()


def test_environment_is_minimal() -> None:
    from exporter.recovery.actions import build_env

    cfg = CommandAction(argv=["x"], env={"MODEL": "qwen"}, inherit_env=["PATH"])
    env = build_env(
        cfg, ctx(path="/evil", HOME="/evil"), {"PATH": "/usr/bin", "HOME": "/root", "TOKEN": "t"}
    )
    assert set(env) == {"PATH", "MODEL", *ENV_VARS}
    assert env["PATH"] == "/usr/bin"
    nul = build_env(cfg, ctx(x="a\x00b"), {})
    assert "\x00" not in nul["LLMHB_LABELS_JSON"]


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    cfg = CommandAction(argv=[sys.executable, "-c", script], timeout=1.0)
    started = time.monotonic()
    result = await run_action(cfg, ctx())
    assert not result.ok
    assert "timed out" in result.detail
    assert time.monotonic() - started < 30
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(grandchild)


async def test_a_daemon_holding_the_pipe_does_not_hang_the_action(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    script = (
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '60'])\n"  # inherits our stdout pipe
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started')\n"
    )
    cfg = CommandAction(argv=[sys.executable, "-c", script], timeout=30.0)
    try:
        result = await run_action(cfg, ctx())
        assert result.ok
        assert "started" in result.detail
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


async def test_output_is_capped() -> None:
    cfg = CommandAction(argv=[sys.executable, "-c", "print('A' * 1000000)"], max_output_bytes=100)
    result = await run_action(cfg, ctx())
    assert result.ok
    assert result.detail.startswith("A" * 100)
    assert "bytes dropped" in result.detail
    assert len(result.detail) < 200


async def test_missing_program_fails_cleanly(tmp_path: Path) -> None:
    result = await run_action(CommandAction(argv=[str(tmp_path / "nope")]), ctx())
    assert not result.ok
    assert "cannot start" in result.detail


async def test_systemd_restarts_the_configured_unit(tmp_path: Path) -> None:
    fake = tmp_path / "systemctl"
    record = tmp_path / "argv"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    fake.chmod(0o755)
    cfg = SystemdAction(unit="vllm@qwen.service", systemctl=str(fake), user=True)
    result = await run_action(cfg, ctx(unit="evil.service"))
    assert result.ok, result.detail
    assert record.read_text().split("\n")[:-1] == ["--user", "restart", "--", "vllm@qwen.service"]

    fake.write_text("#!/bin/sh\necho 'Unit vllm.service not found.' >&2\nexit 5\n")
    result = await run_action(SystemdAction(unit="vllm.service", systemctl=str(fake)), ctx())
    assert not result.ok
    assert "exit status 5" in result.detail and "not found" in result.detail
