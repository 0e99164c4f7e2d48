"""Target discovery: the SD format, file-SD reload adding and removing targets while the
others keep their state, broken files, and HTTP-SD with its limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from exporter.config import DiscoveryConfig, FileSDConfig, HTTPSDConfig, Settings, TargetTemplate
from exporter.discovery import (
    Discovery,
    DiscoveryStats,
    FileSDSource,
    Group,
    SDFormatError,
    derive_name,
    merge_targets,
    parse_groups,
    targets_from_groups,
)
from exporter.simulate import Simulator, SimulatorConfig
from tests.conftest import free_port
from tests.core.live import running_exporter, scrape, value
from tests.waiting import wait_for


# ---- pure ------------------------------------------------------------------------------------
def test_parse_groups_accepts_prometheus_format() -> None:
    doc = [{"targets": ["a:1", "b:2"], "labels": {"model": "m"}}, {"targets": ["c:3"]}]
    assert parse_groups(doc) == [Group(("a:1", "b:2"), {"model": "m"}), Group(("c:3",), {})]
    assert parse_groups(None) == []
    assert parse_groups([]) == []


@pytest.mark.parametrize(
    "doc",
    [
        {"targets": ["a:1"]},
        ["a:1"],
        [{"targets": "a:1"}],
        [{"targets": ["a:1"], "labels": {"x": 1}}],
        [{"targets": ["a:1"], "extra": True}],
    ],
)
def test_parse_groups_rejects_other_shapes(doc: object) -> None:
    with pytest.raises(SDFormatError):
        parse_groups(doc)


def test_targets_from_groups_names_urls_models_and_template() -> None:
    template = TargetTemplate(interval=5, checks={"chat": {"enabled": False}})
    groups = [
        Group(
            ("10.0.0.1:8000",), {"name": "qwen-a", "model": "Qwen/Qwen3-4B", "__scheme__": "https"}
        ),
        Group(("10.0.0.2:8000", "[fd00::3]:8000"), {"name": "shared"}),
        Group(("not an address", "10.0.0.4:8000"), {"__path_prefix__": "/llm"}),
    ]
    targets, errors = targets_from_groups(groups, template)
    assert [(t.name, t.url, t.model) for t in targets] == [
        ("qwen-a", "https://10.0.0.1:8000", "Qwen/Qwen3-4B"),
        ("10.0.0.2:8000", "http://10.0.0.2:8000", None),  # a name label names one address only
        ("fd00::3:8000", "http://[fd00::3]:8000", None),
        ("10.0.0.4:8000", "http://10.0.0.4:8000/llm", None),
    ]
    assert all(t.interval == 5 and not t.checks.chat.enabled for t in targets)
    assert len(errors) == 1 and "not an address" in errors[0]


def test_duplicate_names_are_reported_not_probed_twice() -> None:
    groups = [Group(("h:1",), {"name": "x"}), Group(("h:2",), {"name": "x"})]
    targets, errors = targets_from_groups(groups, TargetTemplate())
    assert [t.url for t in targets] == ["http://h:1"] and "twice" in errors[0]


def test_derive_name() -> None:
    assert derive_name("vllm-0.models.svc:8000") == "vllm-0.models.svc:8000"
    assert derive_name("[::1]:8000") == "0::1:8000"  # a name starts with a letter or digit
    assert derive_name("a b:1") == "a_b:1"


def test_static_targets_win_name_clashes() -> None:
    static, _ = targets_from_groups([Group(("s:1",), {"name": "a"})], TargetTemplate())
    found, _ = targets_from_groups(
        [Group(("d:1",), {"name": "a"}), Group(("d:2",), {"name": "b"})], TargetTemplate()
    )
    merged, dropped = merge_targets(static, found)
    assert [(t.name, t.url) for t in merged] == [("a", "http://s:1"), ("b", "http://d:2")]
    assert dropped == ["a"]


# ---- file SD through the running exporter ----------------------------------------------------
@pytest.fixture
async def sims() -> AsyncIterator[list[Simulator]]:
    out = [
        Simulator(SimulatorConfig(port=0, ttft_seconds=0.01, token_interval_seconds=0.002))
        for _ in range(3)
    ]
    for s in out:
        await s.start()
    yield out
    for s in out:
        await s.stop()


def write_sd(path: Path, entries: dict[str, Simulator]) -> None:
    """Atomic replace, as config management tools do; the size changes with the content."""
    doc = [
        {"targets": [s.url.removeprefix("http://")], "labels": {"name": name}}
        for name, s in entries.items()
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


async def test_file_sd_reload_adds_and_removes_keeping_state(
    sims: list[Simulator], tmp_path: Path
) -> None:
    sd = tmp_path / "targets" / "llm.json"
    sd.parent.mkdir()
    a, b, c = sims
    write_sd(sd, {"a": a, "b": b})
    settings = Settings(
        default_interval=0.3,
        history_file=tmp_path / "h.jsonl",
        discovery={
            "file_sd": [
                {"name": "files", "files": [str(sd.parent / "*.json")], "watch_interval": 0.1}
            ]
        },
    )
    async with running_exporter(settings) as (exporter, base):
        assert set(exporter.monitor.targets) == {"a", "b"}

        async def probed(name: str, at_least: float = 1.0) -> bool:
            n = value(
                await scrape(base), "llm_probe_duration_seconds_count", target=name, check="chat"
            )
            return (n or 0) >= at_least

        await wait_for(lambda: probed("a", 2))
        runtime_a = exporter.monitor.targets["a"]
        chats_before = runtime_a.probes.copy()

        write_sd(sd, {"a": a, "c": c})  # b goes, c comes
        await wait_for(lambda: set(exporter.monitor.targets) == {"a", "c"})
        await wait_for(lambda: probed("c"))
        assert exporter.monitor.targets["a"] is runtime_a  # same state, same counters
        assert all(runtime_a.probes[k] >= n for k, n in chats_before.items())
        text = await scrape(base)
        assert value(text, "llm_target_up", target="b") is None
        assert value(text, "llm_discovery_targets", source="files") == 2.0
        assert value(text, "llm_discovery_errors_total", source="files") == 0.0

        sd.write_text('[{"targets": ["oops"')  # broken: the last good list stays
        await wait_for(lambda: exporter.discovery_stats.get("files").errors >= 1)
        assert set(exporter.monitor.targets) == {"a", "c"}
        assert exporter.monitor.targets["a"] is runtime_a
        assert value(await scrape(base), "llm_discovery_errors_total", source="files") >= 1

        sd.unlink()  # a deleted file takes its targets with it (as in Prometheus)
        await wait_for(lambda: not exporter.monitor.targets)


async def test_static_and_discovered_together_and_reload_keeps_discovered(
    sims: list[Simulator], tmp_path: Path
) -> None:
    a, b, _ = sims
    sd = tmp_path / "sd.yml"
    sd.write_text(f"- targets: ['{b.url.removeprefix('http://')}']\n  labels: {{name: b}}\n")
    config = tmp_path / "config.yml"
    config.write_text(
        f"default_interval: 0.3\nhistory_file: {tmp_path / 'h.jsonl'}\n"
        f"targets:\n  - name: a\n    url: {a.url}\n"
        "discovery:\n  file_sd:\n    - files: [sd.yml]\n      watch_interval: 0.1\n"
    )
    from exporter.config import load_config

    async with running_exporter(load_config(config), config) as (exporter, base):
        assert set(exporter.monitor.targets) == {"a", "b"}  # relative to the config file
        runtime_b = exporter.monitor.targets["b"]
        ok, msg = await exporter.reload()
        assert ok, msg
        assert exporter.monitor.targets["b"] is runtime_b
        config.write_text(config.read_text().replace("watch_interval: 0.1", "watch_interval: 0.2"))
        ok, msg = await exporter.reload()  # a changed source is re-read before applying
        assert ok and exporter.monitor.targets["b"] is runtime_b, msg
        assert value(await scrape(base), "llm_discovery_targets", source="file_sd_0") == 1.0


# ---- HTTP SD ---------------------------------------------------------------------------------
class SDServer:
    """A Prometheus HTTP-SD endpoint on loopback whose answer the test changes."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"[]"
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.seen_headers: list[dict[str, str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sd"

    async def handle(self, request: web.Request) -> web.Response:
        self.seen_headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(
            status=self.status,
            body=self.body,
            content_type="application/json",
            headers=self.headers,
        )

    async def __aenter__(self) -> SDServer:
        app = web.Application()
        app.router.add_get("/sd", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def test_http_sd_keeps_last_good_list_on_errors(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sd-token-123\n")
    changes: list[int] = []
    stats = DiscoveryStats()
    async with SDServer() as server:
        server.body = json.dumps(
            [{"targets": ["10.0.0.1:8000", "10.0.0.2:8000"], "labels": {"model": "m"}}]
        ).encode()
        cfg = DiscoveryConfig(
            http_sd=[
                HTTPSDConfig(
                    url=server.url,
                    refresh_interval=3600,
                    timeout=0.5,
                    max_body_bytes=2048,
                    bearer_token_file=token,
                )
            ]
        )
        disc = Discovery(cfg, base_dir=tmp_path, stats=stats, on_change=lambda: changes.append(1))
        await disc.start()
        try:
            source = disc.sources[0]
            assert [t.name for t in disc.targets()] == ["10.0.0.1:8000", "10.0.0.2:8000"]
            assert server.seen_headers[-1]["Authorization"] == "Bearer sd-token-123"
            assert server.seen_headers[-1]["X-Prometheus-Refresh-Interval-Seconds"] == "3600"
            good = disc.targets()

            for status, body, delay in [
                (500, b"[]", 0.0),  # server error
                (200, b"{not json", 0.0),  # garbage
                (200, b'{"targets": []}', 0.0),  # wrong shape
                (200, b"[" + b" " * 4096 + b"]", 0.0),  # over max_body_bytes
                (200, b"[]", 2.0),  # slower than the timeout
            ]:
                server.status, server.body, server.delay = status, body, delay
                assert await source.refresh() is False
                assert disc.targets() == good
            assert stats.get("http_sd_0").errors == 5
            assert stats.get("http_sd_0").targets == 2

            server.status, server.body, server.delay = 200, b"[]", 0.0
            assert await source.refresh() is True  # an empty list is a valid answer
            assert disc.targets() == []
        finally:
            await disc.stop()


@pytest.mark.parametrize("suffix", [".yml", ".json"])
async def test_file_sd_rewritten_in_two_writes_keeps_its_targets(
    tmp_path: Path, suffix: str
) -> None:
    """A writer that truncates the file, then writes it (`open("w")` + write, as editors and
    `echo >` do) must not be read in between: an empty YAML file would remove every target
    and their state (they would come back as unknown), an empty JSON file counts an error."""
    sd = tmp_path / f"llm{suffix}"
    doc = json.dumps([{"targets": ["127.0.0.1:8000"], "labels": {"name": "a"}}])
    sd.write_text(doc)
    config = FileSDConfig(files=[str(sd)], watch_interval=0.2)
    source = FileSDSource(config, DiscoveryStats(), tmp_path)
    assert source.refresh_now()
    assert [t.name for t in source.targets] == ["a"]

    with sd.open("w") as fh:  # first write: truncated
        fh.flush()
        polling = asyncio.create_task(source.poll())
        await asyncio.sleep(0)  # the watcher has looked at the file in between the writes
        fh.write(doc)  # second write
    changed = await polling
    assert [t.name for t in source.targets] == ["a"]
    assert not changed
    assert source.stats.errors == 0
