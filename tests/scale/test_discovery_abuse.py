"""Discovery under abuse (issue 26): a document nested 100,000 deep, any other failure of a
read, a gzip bomb from HTTP-SD, and `check-config` reading the file-SD files."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from exporter.config import DiscoveryConfig, FileSDConfig, HTTPSDConfig
from exporter.discovery import Discovery, DiscoveryStats
from tests.scale.test_discovery import SDServer

DEEP = "[" * 100_000 + "]" * 100_000
GOOD = [{"targets": ["10.0.0.1:8000"], "labels": {"name": "a"}}]


@pytest.mark.parametrize("suffix", [".json", ".yml"])
async def test_a_file_sd_document_nested_100000_deep_is_a_failed_read(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"sd{suffix}"
    path.write_text(DEEP)
    stats = DiscoveryStats()
    cfg = DiscoveryConfig(file_sd=[FileSDConfig(files=[str(path)], refresh_interval=3600)])
    disc = Discovery(cfg, base_dir=tmp_path, stats=stats, on_change=lambda: None)
    await disc.start()  # not fatal at start
    try:
        source = disc.sources[0]
        assert disc.targets() == [] and stats.get("file_sd_0").errors == 1
        path.write_text(json.dumps(GOOD))
        assert await source.refresh() is True
        assert [t.name for t in disc.targets()] == ["a"]
        path.write_text(DEEP)  # at runtime: counted, the last good list kept
        assert await source.refresh() is False
        assert [t.name for t in disc.targets()] == ["a"]
        assert stats.get("file_sd_0").errors == 2
    finally:
        await disc.stop()


async def test_an_http_sd_document_nested_100000_deep_is_a_failed_read(tmp_path: Path) -> None:
    stats = DiscoveryStats()
    async with SDServer() as server:
        server.body = DEEP.encode()
        cfg = DiscoveryConfig(http_sd=[HTTPSDConfig(url=server.url, refresh_interval=3600)])
        disc = Discovery(cfg, base_dir=tmp_path, stats=stats, on_change=lambda: None)
        await disc.start()
        try:
            assert disc.targets() == [] and stats.get("http_sd_0").errors == 1
            server.body = json.dumps(GOOD).encode()
            assert await disc.sources[0].refresh() is True
            server.body = DEEP.encode()
            assert await disc.sources[0].refresh() is False
            assert [t.name for t in disc.targets()] == ["a"]
            assert stats.get("http_sd_0").errors == 2
        finally:
            await disc.stop()


async def test_a_read_that_fails_for_any_reason_is_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sd.json"
    path.write_text(json.dumps(GOOD))
    stats = DiscoveryStats()
    cfg = DiscoveryConfig(file_sd=[FileSDConfig(files=[str(path)], refresh_interval=3600)])
    disc = Discovery(cfg, base_dir=tmp_path, stats=stats, on_change=lambda: None)
    await disc.start()
    try:

        def broken(data: object) -> object:
            raise ZeroDivisionError("a bug in a parser")

        monkeypatch.setattr("exporter.discovery.sources.parse_groups", broken)
        path.write_text(json.dumps(GOOD * 1))
        assert await disc.sources[0].refresh() is False
        assert [t.name for t in disc.targets()] == ["a"] and stats.get("file_sd_0").errors == 1
    finally:
        await disc.stop()


async def test_a_gzip_bomb_is_cut_at_the_cap_while_it_decompresses(tmp_path: Path) -> None:
    bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"]", compresslevel=9)  # 64 MiB in ~64 KiB
    stats = DiscoveryStats()
    async with SDServer() as server:
        server.headers = {"Content-Encoding": "gzip"}
        server.body = gzip.compress(json.dumps(GOOD).encode())
        cfg = DiscoveryConfig(
            http_sd=[HTTPSDConfig(url=server.url, refresh_interval=3600, max_body_bytes=1 << 20)]
        )
        disc = Discovery(cfg, base_dir=tmp_path, stats=stats, on_change=lambda: None)
        await disc.start()
        try:
            assert [t.name for t in disc.targets()] == ["a"]  # gzip within the cap is read
            server.body = bomb
            tracemalloc.start()
            try:
                assert await disc.sources[0].refresh() is False
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert stats.get("http_sd_0").errors == 1 and [t.name for t in disc.targets()] == ["a"]
            assert peak < 8 << 20, f"{peak} bytes allocated while refusing a 1 MiB-capped bomb"
        finally:
            await disc.stop()


def _check_config(cfg: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_HEARTBEAT_")}
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_check_config_reads_the_file_sd_files(tmp_path: Path) -> None:
    (tmp_path / "sd").mkdir()
    good, bad = tmp_path / "sd" / "good.json", tmp_path / "sd" / "bad.yml"
    good.write_text(json.dumps(GOOD))
    cfg = tmp_path / "c.yml"
    cfg.write_text("discovery: {file_sd: [{files: ['sd/*.json', 'sd/*.yml']}]}\n")
    ok = _check_config(cfg)
    assert ok.returncode == 0, ok.stderr
    bad.write_text(DEEP)
    refused = _check_config(cfg)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert str(bad) in refused.stderr and "nested too deep" in refused.stderr
    bad.write_text("[{targets: [a:1], extra: 1}]")
    refused = _check_config(cfg)
    assert refused.returncode == 2 and "unknown key" in refused.stderr
