"""The command line as a user runs it: real subprocesses, exit codes, what the log says."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.simulate import SimulatorConfig, run_in_thread
from tests.conftest import free_port
from tests.waiting import wait_until

from .live import value

EXE = [sys.executable, "-m", "exporter.cli"]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with run_in_thread(
        SimulatorConfig(port=0, ttft_seconds=0.01, token_interval_seconds=0.002)
    ) as sim:
        yield sim.url


def test_probe_healthy_prints_a_table_and_exits_0(sim_url: str) -> None:
    proc = subprocess.run([*EXE, "probe", sim_url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "healthy"
    assert any(line.startswith("chat") and "Paris" in line for line in lines)


def test_probe_json_output(sim_url: str) -> None:
    proc = subprocess.run(
        [*EXE, "probe", sim_url, "--json"], capture_output=True, text=True, timeout=60
    )
    out = json.loads(proc.stdout)
    assert out["healthy"] is True and out["checks"]["chat"]["success"] is True
    assert out["model"] == "Qwen/Qwen3-4B-Instruct-2507"


def test_probe_unreachable_exits_1_and_usage_error_exits_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [*EXE, "probe", url, "--timeout", "2"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and "connect_error" in proc.stdout and "UNHEALTHY" in proc.stdout
    # the exporter's words (its page and API say "connection refused"), not the OS's
    assert "connection refused" in proc.stdout and "Connect call failed" not in proc.stdout
    proc = subprocess.run([*EXE, "probe", "ftp://x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "url" in proc.stderr
    proc = subprocess.run([*EXE, "probe"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2


def _run_default(port: int, target_port: int, *extra: str, log: Path) -> subprocess.Popen[bytes]:
    """`llm-heartbeat run` with no config, with the default target moved to a free port."""
    code = (
        "import exporter.config.settings as c, exporter.cli.run as r, exporter.cli as cli;"
        f"c.DEFAULT_MODEL_URL = r.DEFAULT_MODEL_URL = 'http://127.0.0.1:{target_port}';"
        f"raise SystemExit(cli.main(['run', '--listen', '127.0.0.1:{port}', *{list(extra)!r}]))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "LLM_HEARTBEAT_HISTORY_FILE": str(log.parent / "h.jsonl"),
        "LLM_HEARTBEAT_DEFAULT_INTERVAL": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),  # this tree's package, not an installed one
    }
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stderr=log.open("wb"),
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=log.parent,
    )


def _metric(port: int, name: str, **labels: str) -> float | None:
    try:
        return value(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text, name, **labels)
    except httpx.HTTPError:
        return None


def test_run_without_config_reports_down_and_says_why(tmp_path: Path) -> None:
    port, target = free_port(), free_port()
    log = tmp_path / "log.txt"
    proc = _run_default(port, target, log=log)
    try:
        wait_until(
            lambda: _metric(port, "llm_target_state", target="default", state="down") == 1.0,
            40,
            lambda: f"the default target DOWN; log: {log.read_text()}",
        )
        assert proc.poll() is None  # still running, not crashed
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "nothing listens on" in text and f"127.0.0.1:{target}" in text
    # the start line names the JSON API (as the README says) and where the history goes
    assert f"JSON: http://127.0.0.1:{port}/api/v1/targets" in text
    assert f"transition history: {tmp_path / 'h.jsonl'}" in text


def test_run_help_says_what_model_defaults_to() -> None:
    out = subprocess.run([*EXE, "run", "--help"], capture_output=True, text=True, timeout=60)
    assert "first model /v1/models lists" in " ".join(out.stdout.split())
    assert "(default: any)" not in out.stdout


@pytest.mark.parametrize("admin_taken", [False, True])
def test_run_simulates_if_missing_and_goes_up(tmp_path: Path, admin_taken: bool) -> None:
    port, target = free_port(), free_port()
    log = tmp_path / "log.txt"
    blocker = socket.socket()  # the admin API's usual port (+10000), bound by someone else
    for _ in range(50 if admin_taken else 0):
        try:
            blocker.bind(("127.0.0.1", target + 10000))
            break
        except OSError:  # in use already: another target port
            target = free_port()
    else:
        assert not admin_taken, "no bindable port + 10000 found"
    proc = _run_default(port, target, "--simulate-if-missing", log=log)
    try:
        wait_until(
            lambda: _metric(port, "llm_target_up", target="default") == 1.0,
            40,
            lambda: f"the default target UP; log: {log.read_text()}",
        )
        text = log.read_text()
        assert "SIMULATED" in text and f"status page http://127.0.0.1:{port}/" in text
        # the first run says what to open in a few lines, up to the target's first state
        head = text[: text.index("unknown -> up")].splitlines()
        assert len(head) <= 6 and not any("Uvicorn running" in line for line in head), text
        # The log names the simulator's admin API, and it breaks the simulator on purpose.
        admin = re.search(r"admin API (http://127\.0\.0\.1:(\d+))", text)
        assert admin is not None, text
        assert (int(admin[2]) == target + 10000) is not admin_taken  # else any free port
        httpx.post(f"{admin[1]}/admin/fault", json={"kind": "down"}, timeout=5).raise_for_status()
        wait_until(
            lambda: _metric(port, "llm_target_up", target="default") == 0.0,
            40,
            lambda: f"the default target down after the fault; log: {log.read_text()}",
        )
    finally:
        proc.terminate()
        blocker.close()
        assert proc.wait(10) == 0


def test_run_with_target_flags_probes_those_servers(sim_url: str, tmp_path: Path) -> None:
    port, gone = free_port(), free_port()
    log = tmp_path / "log.txt"
    model = SimulatorConfig().model
    cmd = ["--target", sim_url, "--target", f"gone=http://127.0.0.1:{gone}", "--model", model]
    proc = _run_default(port, free_port(), *cmd, log=log)
    named = sim_url.removeprefix("http://")  # unnamed: named after HOST:PORT
    try:
        wait_until(
            lambda: _metric(port, "llm_target_up", target=named) == 1.0,
            40,
            lambda: f"{named} up; log: {log.read_text()}",
        )
        wait_until(
            lambda: _metric(port, "llm_target_up", target="gone") == 0.0,
            40,
            lambda: f"'gone' down; log: {log.read_text()}",
        )
        assert _metric(port, "llm_target_up", target="default") is None  # no default target
    finally:
        proc.terminate()
        proc.wait(10)


def test_run_with_a_bad_target_flag_exits_2_and_says_which() -> None:
    for argv, said in (
        (["--target", "ftp://gpu-7"], "--target 'ftp://gpu-7'"),
        (["--target", "a=http://x:1", "--target", "a=http://y:1"], "'a' is used twice"),
        (["--model", "m"], "--model needs --target"),
    ):
        proc = subprocess.run([*EXE, "run", *argv], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and said in proc.stderr, (argv, proc.stderr)


def test_run_never_prints_a_password_from_a_bad_target_flag() -> None:
    ran = 0
    for spec in (
        "http://user:s3cr/etPW@h:9",
        "m=http://user:s3cr/etPW@h:9",
        "http://u:s3cr@h:9/x@y",
    ):
        proc = subprocess.run(
            [*EXE, "run", "--target", spec], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2 and "percent-encode" in proc.stderr, proc.stderr
        assert "s3cr" not in proc.stderr + proc.stdout and "etPW" not in proc.stderr, proc.stderr
        ran += 1
    assert ran == 3


def test_run_with_bad_config_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets:\n  - name: a\n    url: http://x\n    chek: {}\n")
    proc = subprocess.run(
        [*EXE, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and str(cfg) in proc.stderr and "targets[0].chek" in proc.stderr


def test_run_refuses_recovery_rules_without_a_token(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "targets:\n  - {name: a, url: 'http://127.0.0.1:9'}\n"
        "recovery:\n  enabled: true\n  rules:\n"
        "    - name: restart\n      match: {alertnames: [LLMTargetDown]}\n"
        "      action: {type: command, argv: [/bin/true]}\n"
    )
    proc = subprocess.run(
        [*EXE, "run", "--config", str(cfg), "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "token" in proc.stderr
