"""Config errors name the file and the field; the environment overrides the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import ConfigError, TargetConfig, load_config, redact_url
from tests.conftest import found


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yml"
    p.write_text(text)
    return p


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    s = load_config(write(tmp_path, "targets:\n  - name: qwen\n    url: http://127.0.0.1:8000/\n"))
    t = s.targets[0]
    assert t.url == "http://127.0.0.1:8000" and s.default_interval == 15
    assert t.checks.chat.max_tokens == 8 and t.checks.chat.temperature == 0
    assert t.checks.chat.stream is True and t.checks.chat.expect_contains == "Paris"
    assert t.thresholds.failures_to_down == 3 and s.listen_port == 8001


@pytest.mark.parametrize(
    ("yaml_text", "field", "words"),
    [
        (
            "targets:\n  - name: a\n    url: http://x\n    bogus: 1\n",
            "targets[0].bogus",
            "unknown key",
        ),
        ("targts: []\n", "targts", "unknown key"),
        ("targets:\n  - name: a\n    url: ftp://x\n", "targets[0]", "http"),
        (
            "targets:\n  - name: a\n    url: http://x\n    checks: {chat: {timeout: soon}}\n",
            "targets[0].checks.chat.timeout",
            "invalid duration",
        ),
        (
            "targets:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n",
            "",
            "used twice",
        ),
        ("default_interval: -1\n", "default_interval", ""),
        (
            "targets:\n  - name: a\n    url: http://x\n    checks: {chat: {expect_regex: '('}}\n",
            "targets[0].checks.chat",
            "regular expression",
        ),
        ("log_format: xml\n", "log_format", "text"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, yaml_text: str, field: str, words: str) -> None:
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and field in msg and words in msg


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  - name: a\n   url: [\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(path)


def test_secret_never_echoed_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "targets:\n  - name: a\n    url: http://x\n    api_key: sk-topsecret\n    api_key_file: /k\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "sk-topsecret" not in str(info.value)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "default_interval: 30s\nlisten: 127.0.0.1:9000\n")
    monkeypatch.setenv("LLM_HEARTBEAT_DEFAULT_INTERVAL", "5")
    monkeypatch.setenv("LLM_HEARTBEAT_TARGETS", '[{"name": "e", "url": "http://127.0.0.1:1"}]')
    s = load_config(path)
    assert s.default_interval == 5 and s.listen == "127.0.0.1:9000" and s.targets[0].name == "e"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "targets:\n  - {name: z, url: 'http://127.0.0.1:1'}\n")
    monkeypatch.setenv("LLM_HEARTBEAT_CONFIG", str(path))
    assert load_config().targets[0].name == "z"


def test_api_key_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk-file\n")
    s = load_config(
        write(
            tmp_path,
            f"targets:\n  - name: a\n    url: http://x\n    api_key_file: {tmp_path / 'key'}\n",
        )
    )
    assert s.targets[0].resolve_api_key() == "sk-file"
    assert "sk-file" not in repr(s)


def test_url_credentials_are_redacted() -> None:
    assert redact_url("http://user:pw@host:8000/v1") == "http://host:8000/v1"


def test_check_config_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "targets:\n  - {name: a, url: 'http://x'}\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("targets:\n  - {name: a, url: 'http://x', extra: 1}\n")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "targets[0].extra" in err
    assert main(["check-config", str(tmp_path / "missing.yml")]) == 2


@pytest.mark.parametrize(
    "path",
    found(Path(__file__).resolve().parents[2].glob("examples/*.yml"), "example configs"),
    ids=lambda p: p.name,
)
def test_shipped_examples_are_valid(path: Path) -> None:
    # the examples name secrets mounted at deploy time: their sources are required, not read
    assert main(["check-config", "--skip-secrets", str(path)]) == 0


def test_targets_with_the_same_checks_share_one_copy_of_them() -> None:
    same = [TargetConfig(name=f"t{i}", url=f"http://h{i}:8000", checks={"chat": {"max_tokens": 4}})
            for i in range(3)]  # fmt: skip
    other = TargetConfig(name="o", url="http://o:8000", checks={"chat": {"max_tokens": 5}})
    assert same[0].checks is same[1].checks is same[2].checks
    assert same[0].thresholds is other.thresholds  # the defaults: one copy
    assert other.checks is not same[0].checks and other.checks.chat.max_tokens == 5
    assert [t.checks.chat.max_tokens for t in same] == [4, 4, 4]
