"""`check-config` refuses what `run` refuses, as a message naming the file and the field, never
a traceback and never a secret; `run` says the same. Real subprocesses, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = [sys.executable, "-m", "exporter.cli"]
RULES = """
recovery:
  enabled: true
  rules:
    - name: r
      match: {alertnames: [LLMTargetDown]}
      action: {type: systemd, unit: vllm.service}
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LLM_HEARTBEAT_")}
    return {**env, **extra}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args], capture_output=True, text=True, timeout=60, env=env or _env()
    )


def check(tmp_path: Path, content: str | bytes, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "c.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return cli("check-config", str(path), env=_env(**env))


def run_exits(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`run` on the same file; every case here fails before it binds a port."""
    args = ["run", "--config", str(tmp_path / "c.yml"), "--listen", "127.0.0.1:1"]
    return cli(*args, env=_env(LLM_HEARTBEAT_HISTORY_FILE="", **env))


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, out
    return out


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://admin:pw0rd@gpu-1:99999", "invalid port"),
        ("http://admin:s3cr/etPW@gpu-1:8000", "percent-encode"),
        ("http://admin:s3cr?etPW@gpu-1:8000", "percent-encode"),
    ],
    ids=["port-99999", "slash-in-password", "question-mark-in-password"],
)
def test_url_refused_by_both_without_showing_the_password(
    tmp_path: Path, url: str, message: str
) -> None:
    out = refused(check(tmp_path, f"targets: [{{name: a, url: '{url}'}}]\n"), "targets[0]", message)
    out += refused(run_exits(tmp_path), message)
    for secret in ("pw0rd", "s3cr", "etPW"):
        assert secret not in out


def test_recovery_rules_without_a_token_refused_by_both(tmp_path: Path) -> None:
    refused(check(tmp_path, RULES), "no bearer token")
    refused(run_exits(tmp_path), "no bearer token")


def test_unreadable_token_refused_unless_secrets_are_skipped(tmp_path: Path) -> None:
    cfg = RULES + f"  auth: {{token_file: {tmp_path / 'missing'}}}\n"
    refused(check(tmp_path, cfg), "c.yml", "recovery.auth.token_file: cannot read")
    refused(run_exits(tmp_path), "c.yml", "recovery.auth.token_file: cannot read")
    proc = cli("check-config", "--skip-secrets", str(tmp_path / "c.yml"))
    assert proc.returncode == 0, proc.stderr
    # a probe token named by an unset variable: run refuses it, so check-config does
    refused(check(tmp_path, "probe: {token_env: NO_SUCH_VAR_XYZ}\n"), "NO_SUCH_VAR_XYZ")


def test_unreadable_or_empty_api_key_file_refused_by_both_naming_file_and_field(
    tmp_path: Path,
) -> None:
    """A missing key file once passed check-config and then called a healthy server down
    (issue 22): now both refuse it at load, naming the config file, the field and the file."""
    missing = tmp_path / "no-such-key"
    cfg = f"targets:\n  - {{name: a, url: 'http://127.0.0.1:9'}}\n  - name: b\n    url: http://127.0.0.1:9\n    api_key_file: {missing}\n"
    out = refused(check(tmp_path, cfg), "c.yml", "targets[1].api_key_file", str(missing))
    assert "No such file" in out
    refused(run_exits(tmp_path), "c.yml", "targets[1].api_key_file", str(missing))
    assert cli("check-config", "--skip-secrets", str(tmp_path / "c.yml")).returncode == 0
    empty = tmp_path / "empty-key"
    empty.write_text("\n")
    refused(
        check(tmp_path, cfg.replace(str(missing), str(empty))),
        "targets[1].api_key_file",
        "is empty",
    )
    # discovery templates and /probe modules are walked too
    cfg = f"probe:\n  modules:\n    m: {{api_key_file: {missing}}}\n"
    refused(check(tmp_path, cfg), "probe.modules.m.api_key_file")
    key = tmp_path / "key"
    key.write_text("sk-the-key\n")
    ok = check(tmp_path, cfg.replace(str(missing), str(key)))
    assert ok.returncode == 0 and "sk-the-key" not in ok.stdout + ok.stderr


def test_top_level_integer_key_and_invalid_utf8(tmp_path: Path) -> None:
    refused(check(tmp_path, "1: x\n"), "c.yml", "key 1")
    refused(check(tmp_path, "targets:\n  - {name: a, 7: b}\n"), "key targets[0].7")
    refused(check(tmp_path, b"targets: []\n# caf\xe9\n"), "c.yml", "not UTF-8")
    refused(run_exits(tmp_path), "not UTF-8")
    refused(check(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"), "nested too deeply")


def test_bad_json_in_an_environment_variable_is_named_not_blamed_on_listen(
    tmp_path: Path,
) -> None:
    env = {"LLM_HEARTBEAT_TARGETS": '[{"name": "a", "url": "http://x:sekrit@h"'}
    out = refused(check(tmp_path, "", **env), "LLM_HEARTBEAT_TARGETS", "not valid JSON")
    out += refused(run_exits(tmp_path, **env), "LLM_HEARTBEAT_TARGETS", "not valid JSON")
    assert "--listen" not in out and "sekrit" not in out


def test_unknown_key_suggests_the_setting(tmp_path: Path) -> None:
    refused(check(tmp_path, "targts: []\n"), "targts: unknown key; did you mean 'targets'?")
    refused(
        check(tmp_path, "targets: [{name: a, url: 'http://h:1', intervl: 5}]\n"),
        "targets[0].intervl: unknown key; did you mean 'interval'?",
    )
    refused(
        check(tmp_path, "targets: [{name: a, url: 'http://h:1', checks: {chat: {strem: 1}}}]\n"),
        "did you mean 'stream'?",
    )
    out = refused(check(tmp_path, "zzzz: 1\n"), "zzzz: unknown key")
    assert "did you mean" not in out


def test_bare_port_says_host_port(tmp_path: Path) -> None:
    refused(check(tmp_path, "listen: 8001\n"), "listen: must be HOST:PORT", "0.0.0.0:8001")
    refused(check(tmp_path, "listen: ':99999'\n"), "listen: must be HOST:PORT")


def test_environment_hint_only_when_a_variable_was_used(tmp_path: Path) -> None:
    out = refused(check(tmp_path, "targts: []\n"))
    assert "the environment" not in out and "LLM_HEARTBEAT_" not in out
    out = refused(check(tmp_path, "targts: []\n", LLM_HEARTBEAT_LOG_LEVEL="debug"))
    assert "LLM_HEARTBEAT_LOG_LEVEL" in out


def test_misspelt_environment_variable_refused_with_did_you_mean(tmp_path: Path) -> None:
    """LLM_HEARTBEAT_DEFAULT_INTERVALL=5 was silently ignored (issue 22): an LLM_HEARTBEAT_*
    variable that names no setting is an error like an unknown key, with the nearest name,
    for both commands; nested names (`__`) are checked level by level."""
    cfg = "targets: [{name: a, url: 'http://127.0.0.1:9'}]\n"
    out = refused(
        check(tmp_path, cfg, LLM_HEARTBEAT_DEFAULT_INTERVALL="5"),
        "LLM_HEARTBEAT_DEFAULT_INTERVALL",
        "did you mean LLM_HEARTBEAT_DEFAULT_INTERVAL?",
    )
    assert "environment" in out
    refused(run_exits(tmp_path, LLM_HEARTBEAT_DEFAULT_INTERVALL="5"), "did you mean")
    refused(
        check(tmp_path, cfg, LLM_HEARTBEAT_SHARDING__INDX="1"),
        "did you mean LLM_HEARTBEAT_SHARDING__INDEX?",
    )
    refused(check(tmp_path, cfg, LLM_HEARTBEAT_NOTHING_LIKE_IT="1"), "unknown variable")
    # the real names still work, nested ones included
    ok = check(tmp_path, cfg, LLM_HEARTBEAT_DEFAULT_INTERVAL="5", LLM_HEARTBEAT_SHARDING__COUNT="2")
    assert ok.returncode == 0, ok.stderr
