"""deploy/systemd/llm-heartbeat.service, checked by systemd itself: `systemd-analyze verify`
(no error, no warning: an unknown or misspelt key is only a warning to systemd) and
`systemd-analyze security` (the sandbox really is on), plus the settings issue 17 asks for."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "llm-heartbeat.service"
INSTALLED = "/usr/local/bin/llm-heartbeat"


def _service() -> dict[str, list[str]]:
    """[Service] keys to their values (a key may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with its ExecStart pointed at this machine's command: verify checks that the
    program exists, and here it is not installed under /usr/local/bin."""
    exe = shutil.which("llm-heartbeat") or str(Path(sys.executable).with_name("llm-heartbeat"))
    if not Path(exe).is_file():
        pytest.skip("no llm-heartbeat command installed beside this Python")
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED in text
    path = tmp_path / UNIT.name
    path.write_text(text.replace(INSTALLED, exe), encoding="utf-8")
    return path


def test_systemd_analyze_verify_is_clean(unit: Path) -> None:
    tool = require_binary("systemd-analyze")
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr + proc.stdout


def test_systemd_analyze_verify_catches_a_misspelt_key(unit: Path) -> None:
    """The check above can fail: systemd reports a key it does not know."""
    tool = require_binary("systemd-analyze")
    unit.write_text(unit.read_text().replace("ProtectSystem=", "ProtectSytem="))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert "ProtectSytem" in proc.stderr


def test_exposure_is_low(unit: Path) -> None:
    """systemd's own score of the sandbox, 0 (locked down) to 10 (none); 2.0 is "OK"."""
    tool = require_binary("systemd-analyze")
    proc = subprocess.run(
        [tool, "security", "--offline=true", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "Overall exposure level" in proc.stdout


def test_the_unit_has_what_a_production_install_needs() -> None:
    svc = _service()
    assert svc["DynamicUser"] == ["yes"] and svc["User"] == ["llm-heartbeat"]
    assert svc["StateDirectory"] == ["llm-heartbeat"]
    history = "LLM_HEARTBEAT_HISTORY_FILE=/var/lib/llm-heartbeat/history.jsonl"
    assert history in svc["Environment"]  # the history lives in the state directory
    assert int(svc["LimitNOFILE"][0]) >= 65536
    assert svc["ProtectSystem"] == ["strict"] and svc["NoNewPrivileges"] == ["yes"]
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP re-reads the config
    assert svc["ExecStart"][0].startswith(INSTALLED + " run --config /etc/llm-heartbeat/")
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    assert parser["Install"]["WantedBy"] == "multi-user.target"


DROPIN = ROOT / "deploy" / "systemd" / "sudo-recovery.conf"
# systemd.exec(5), NoNewPrivileges=: "certain settings override this and ignore the value of
# this setting" (systemd 252's list)
OVERRIDE_NNP = (
    "DynamicUser", "LockPersonality", "MemoryDenyWriteExecute", "PrivateDevices",
    "ProtectClock", "ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules",
    "ProtectKernelTunables", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime",
    "RestrictSUIDSGID", "SystemCallArchitectures", "SystemCallFilter", "SystemCallLog",
)  # fmt: skip
# settings that give the service a mount namespace, where everything is mounted nosuid
NAMESPACE = ("ProtectSystem", "ProtectHome", "PrivateTmp", "ProtectProc", "ProcSubset",
             "ProtectControlGroups")  # fmt: skip
OFF = {"", "no", "false", "default", "all"}


def _dropin() -> dict[str, str]:
    out = {}
    for raw in DROPIN.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_sudo_dropin_resets_everything_that_keeps_no_new_privileges_on() -> None:
    """The README's sudo recipe once set NoNewPrivileges=no while PrivateDevices=,
    SystemCallFilter=, RestrictSUIDSGID= and an empty CapabilityBoundingSet= stayed on, which
    systemd.exec(5) says makes it ignored (issue 22)."""
    svc, drop = _service(), _dropin()
    assert drop["NoNewPrivileges"] == "no"
    on = [k for k in (*OVERRIDE_NNP, *NAMESPACE) if k in svc and svc[k][-1] not in OFF]
    assert len(on) >= 15  # the unit sets most of them: the loop below checks something
    for key in on:
        assert key in drop and drop[key] in OFF, f"{key} is still on: sudo cannot work"
    assert drop["CapabilityBoundingSet"] == "~"  # all: sudo becomes root


@pytest.fixture
def with_dropin(unit: Path) -> tuple[Path, dict[str, str]]:
    """The unit in a directory of its own with the drop-in beside it, as systemd finds it."""
    (unit.parent / f"{unit.name}.d").mkdir()
    (unit.parent / f"{unit.name}.d" / DROPIN.name).write_text(DROPIN.read_text())
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"}
    return unit, env


def test_sudo_dropin_verifies_and_security_shows_new_privileges_possible(
    with_dropin: tuple[Path, dict[str, str]],
) -> None:
    tool = require_binary("systemd-analyze")
    unit, env = with_dropin
    verify = subprocess.run([tool, "verify", unit.name], capture_output=True, text=True,
                            timeout=120, env=env, cwd=unit.parent)  # fmt: skip
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    sec = subprocess.run(
        [tool, "security", "--offline=true", "--threshold=100", "--no-pager", unit.name],
        capture_output=True, text=True, timeout=120, env=env, cwd=unit.parent,
    )  # fmt: skip
    assert sec.returncode == 0, sec.stderr
    lines = {
        ln.split()[1]: ln.split()[0] for ln in sec.stdout.splitlines() if ln.startswith(("✓", "✗"))
    }
    assert lines["NoNewPrivileges="] == "✗"  # the drop-in is read, and it really is off
    assert lines["PrivateDevices="] == "✗" and lines["RestrictSUIDSGID="] == "✗"
    assert "UNSAFE" in sec.stdout  # what the README says it costs


def test_the_second_replica_drop_in_gives_a_second_exporter_sharing_the_rails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/systemd/ha.conf (docs/ha.md) over the shipped example config: another port,
    its own history files, the rails file both receivers lock."""
    from exporter.config.loading import load_config
    from exporter.config.tls import files_unchecked

    drop_in = ROOT / "deploy" / "systemd" / "ha.conf"
    env = {}
    for line in drop_in.read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value
    assert len(env) == 4
    config = tmp_path / "config.yml"
    config.write_text((ROOT / "examples" / "llm-heartbeat.yml").read_text(encoding="utf-8"))
    with files_unchecked():  # the example's TLS files exist only where it is deployed
        first = load_config(config)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        second = load_config(config)
    assert first.listen != second.listen == "0.0.0.0:8002"
    assert first.history_file != second.history_file
    assert first.recovery.history_file != second.recovery.history_file
    shared = second.recovery.rails.shared_file
    # in the unit's state directory, which both instances (one dynamic user) can write
    assert (
        shared is not None and shared.parent == Path("/var/lib") / _service()["StateDirectory"][0]
    )
