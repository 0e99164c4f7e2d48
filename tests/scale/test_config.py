"""The scale-out config keys: validated while decoded, with plain messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import ConfigError, Settings, TargetConfig, TargetTemplate, load_config


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("probe: {allowed_targets: ['10.0.0.0/33']}", "must be a host[:port] pattern or a CIDR"),
        ("probe: {allowed_targets: ['']}", "must be a host[:port] pattern or a CIDR"),
        ("probe: {modules: {'bad name': {}}}", "is not a valid module name"),
        ("probe: {modules: {m: {timeout: 0}}}", "greater than 0"),
        ("probe: {modules: {m: {scheme: ftp}}}", "probe.modules.m.scheme"),
        ("probe: {modules: {m: {interval: 5s}}}", "unknown key"),
        ("discovery: {file_sd: [{files: []}]}", "discovery.file_sd[0].files"),
        ("discovery: {http_sd: [{url: 'file:///etc/passwd'}]}", "absolute http:// or https://"),
        (
            "discovery: {file_sd: [{name: a, files: [x]}], http_sd: [{name: a, url: 'http://h'}]}",
            "names must be unique: a",
        ),
        ("discovery: {file_sd: [{files: [x], template: {name: n}}]}", "unknown key"),
        ("sharding: {index: 3, count: 3}", "index 3 must be below count 3"),
        ("sharding: {count: 0}", "sharding.count"),
    ],
)
def test_invalid_scale_config(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert message in str(err.value)


def test_defaults_and_source_names(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        "discovery:\n  file_sd: [{files: [a.json]}, {files: [b.json]}]\n"
        "  http_sd: [{url: 'http://sd:1/x'}]\n",
    )
    assert [src.name for src in s.discovery.sources] == ["file_sd_0", "file_sd_1", "http_sd_0"]
    assert s.discovery.file_sd[0].watch_interval == 5.0
    assert s.sharding.count == 1 and s.probe.timeout_offset == 0.5 and not s.probe.modules


def test_template_mirrors_target_config() -> None:
    """A discovered target can be given every setting a static one has, except name and url."""
    assert set(TargetTemplate.model_fields) == set(TargetConfig.model_fields) - {"name", "url"}


def test_no_default_target_when_targets_come_from_elsewhere(tmp_path: Path) -> None:
    assert [t.name for t in load(tmp_path, "{}").with_default_target().targets] == ["default"]
    s = load(tmp_path, "discovery: {file_sd: [{files: [x.json]}]}")
    assert s.with_default_target().targets == []
    s = load(tmp_path, "probe: {modules: {vllm: {}}, allowed_targets: ['*.svc']}")
    assert s.with_default_target().targets == []
