"""The exporter's own faults are never a target's (issue 22): a key file the exporter cannot
read, a bug inside a probe. The real exporter (uvicorn, its own probe client) against the
simulated vLLM server started with an API key, over loopback; what a user sees on /metrics,
/api/v1/targets and the recovery receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.config import Settings, TargetConfig
from exporter.probes import PROBES
from exporter.probes.results import Check
from exporter.simulate import Simulator, SimulatorConfig
from exporter.util import secrets
from exporter.util.faults import FAULTS
from tests.recovery.helpers import AUTH, TOKEN, alert, calls, fast_rails, payload, recorder_rule
from tests.waiting import wait_for

from .live import running_exporter, scrape, value

KEY = "sk-own-faults-0123456789"


@pytest.fixture(autouse=True)
def fresh_faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A clean fault book, and key files read again every 0.1 s (not 10 s)."""
    FAULTS.clear()
    monkeypatch.setattr(secrets, "REREAD_AFTER", 0.1)
    yield
    FAULTS.clear()


def _settings(tmp_path: Path, url: str, key_file: Path) -> Settings:
    token = tmp_path / "hook-token"
    token.write_text(TOKEN + "\n")
    target = TargetConfig(
        name="qwen",
        url=url,
        api_key_file=key_file,
        thresholds={"failures_to_down": 1, "retry_interval": 0.1},
        checks={"engine": {"enabled": False}},
    )
    recovery = {
        "enabled": True,
        "auth": {"token_file": str(token)},
        "rules": [recorder_rule(tmp_path / "calls.jsonl")],
        "rails": fast_rails(),
    }
    return Settings(
        targets=[target],
        default_interval=0.3,
        history_file=tmp_path / "history.jsonl",
        recovery=recovery,
    )


async def _api(base: str) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(base + "/api/v1/targets")).json()


async def test_missing_key_file_with_a_healthy_server_is_the_exporters_fault(
    tmp_path: Path,
) -> None:
    sim = Simulator(SimulatorConfig(port=0, ttft_seconds=0.02, api_key=KEY))
    await sim.start()
    await sim.wait_ready()
    key_file = tmp_path / "key"  # not there: gone between the load and the first probe
    settings = _settings(tmp_path, sim.url, key_file)
    seen: set[str] = set()
    try:
        async with running_exporter(settings) as (_, base):

            async def counted() -> bool:
                text = await scrape(base)
                for state in ("unknown", "starting", "up", "overloaded", "degraded", "down"):
                    if value(text, "llm_target_state", target="qwen", state=state) == 1.0:
                        seen.add(state)
                errors = value(text, "llm_exporter_errors_total", kind="secret_file") or 0
                return errors >= 3

            await wait_for(counted, timeout=30)
            text = await scrape(base)
            assert value(text, "llm_exporter_problems", kind="secret_file") == 1.0
            assert value(text, "llm_target_state", target="qwen", state="unknown") == 1.0
            # the checks did run: the loop is not stuck (LLMHeartbeatStale stays silent)
            last = value(
                text, "llm_probe_last_run_timestamp_seconds", target="qwen", check="health"
            )
            assert last is not None and last > 0
            assert value(text, "llm_probe_failures_total", target="qwen", check="health",
                         reason="invalid_response") is None  # fmt: skip
            api = await _api(base)
            problem = api["targets"][0]["exporter_problems"][0]
            assert problem["kind"] == "secret_file" and problem["file"] == str(key_file)
            assert "api_key_file" in problem["field"] and "qwen" in problem["field"]
            assert api["exporter_problems"][0]["file"] == str(key_file)
            assert api["targets"][0]["state"] == "unknown"
            assert sim.stats.requests == 0  # nothing was sent without the key
            async with httpx.AsyncClient() as c:
                page = (await c.get(base + "/")).text
            assert "The exporter&#x27;s own problem" in page or "exporter's own problem" in page
            assert str(key_file) in page

            # an alert that arrived anyway (another replica, a stale rule): no restart
            async with httpx.AsyncClient() as c:
                r = await c.post(base + "/hooks/alertmanager", headers=AUTH,
                                 json=payload(alert(target="qwen")))  # fmt: skip
                assert r.status_code == 200, r.text

                async def decided() -> bool:
                    text = await scrape(base)
                    return bool(value(text, "llm_recovery_attempts_total", target="qwen",
                                      action="command", result="skipped_exporter_fault"))  # fmt: skip

                await wait_for(decided, timeout=30)
            assert calls(tmp_path / "calls.jsonl") == []

            # the key arrives: judged on real answers at once
            key_file.write_text(KEY + "\n")

            async def up() -> bool:
                return (await _api(base))["targets"][0]["state"] == "up"

            await wait_for(up, timeout=30)
            assert (await _api(base))["exporter_problems"] == []

            # the file vanishes (a rotation half done), then is truncated: the key read
            # before is kept, the target stays up, the exporter says it is its problem
            key_file.unlink()

            async def listed() -> bool:
                return bool((await _api(base))["targets"][0]["exporter_problems"])

            await wait_for(listed, timeout=30)
            key_file.write_text("")
            before = sim.stats.requests
            await wait_for(lambda: sim.stats.requests > before + 6, timeout=30)
            api = await _api(base)
            assert api["targets"][0]["state"] == "up"
            assert "still used" in api["targets"][0]["exporter_problems"][0]["detail"]
            assert KEY not in str(api)
            assert KEY not in await scrape(base)
    finally:
        await sim.stop()
    assert "down" not in seen and "degraded" not in seen
    history = (tmp_path / "history.jsonl").read_text()
    assert '"down"' not in history and '"degraded"' not in history


async def test_a_bug_inside_a_probe_is_the_exporters_not_the_targets(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that raises before the target answered (a bug of ours) is counted as
    `probe_bug`, shown as the exporter's, and never takes the target down."""

    async def broken(ctx: object) -> object:
        from exporter.probes._base import guarded

        async def body(attempt: object) -> object:
            raise AttributeError("our own typo")

        return await guarded(Check.CHAT, ctx, body)  # type: ignore[arg-type]

    monkeypatch.setitem(PROBES, Check.CHAT, broken)
    target = TargetConfig(
        name="bugged", url=sim.url, thresholds={"failures_to_down": 1},
        checks={"engine": {"enabled": False}},
    )  # fmt: skip
    settings = Settings(targets=[target], default_interval=0.2, history_file=None)
    async with running_exporter(settings) as (_, base):

        async def counted() -> bool:
            text = await scrape(base)
            return (value(text, "llm_exporter_errors_total", kind="probe_bug") or 0) >= 3

        await wait_for(counted, timeout=30)
        await asyncio.sleep(0.5)
        api = await _api(base)
        t = api["targets"][0]
        assert t["state"] in ("unknown", "up")  # health and models pass; chat says nothing
        assert t["state"] != "down" and t["state"] != "degraded"
        assert "chat" not in t["checks"]
        assert [p["kind"] for p in t["exporter_problems"]] == ["probe_bug"]
        assert "AttributeError" in t["exporter_problems"][0]["detail"]


def test_problems_of_targets_and_files_no_longer_configured_are_forgotten() -> None:
    """A reload that removes a target (or its key file) ends its open problems: nothing would
    clear them otherwise, and the page would show them for ever."""
    from exporter.util.faults import FaultBook, FaultKind

    book = FaultBook()
    book.raised(FaultKind.SECRET_FILE, "secret:/a", "gone", file="/a")
    book.raised(FaultKind.SECRET_FILE, "secret:/b", "gone", file="/b")
    book.raised(FaultKind.PROBE_BUG, "probe:x/chat", "bug", target="x")
    book.raised(FaultKind.PROBE_BUG, "probe:y/chat", "bug", target="y")
    book.retain(targets={"x"}, files={"/a"})
    assert sorted(book.open) == ["probe:x/chat", "secret:/a"]
    assert book.counts[FaultKind.SECRET_FILE] == 2  # counted all the same


async def test_a_reload_naming_an_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    """As at start: a reload whose config names a key file that cannot be read keeps the
    running config, and says which field and file."""
    from exporter.config import load_config
    from exporter.runtime import Exporter

    cfg = tmp_path / "c.yml"
    cfg.write_text("history_file: ''\ntargets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    exporter = Exporter(load_config(cfg), cfg)
    missing = tmp_path / "gone"
    cfg.write_text(
        "history_file: ''\ntargets:\n  - {name: a, url: 'http://127.0.0.1:9'}\n"
        f"  - {{name: b, url: 'http://127.0.0.1:9', api_key_file: '{missing}'}}\n"
    )
    ok, message = await exporter.reload()
    assert not ok and "targets[1].api_key_file" in message and str(missing) in message
    assert list(exporter.monitor.targets) == ["a"]
