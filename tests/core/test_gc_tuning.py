"""The runtime's collector settings (exporter/runtime.py says why, bench/memlive.py measures):
what exists at start is frozen, and young collections wait for many more new objects."""

from __future__ import annotations

import gc
from pathlib import Path

from exporter.config import Settings, TargetConfig
from exporter.runtime import YOUNG_GC_THRESHOLD, Exporter


async def test_start_freezes_the_startup_heap_and_raises_the_young_threshold(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    target = TargetConfig(name="a", url="http://127.0.0.1:9", interval=3600)
    exporter = Exporter(Settings(targets=[target], history_file=tmp_path / "h.jsonl"))
    try:
        assert gc.get_freeze_count() == 0
        await exporter.start()
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10)
        assert YOUNG_GC_THRESHOLD > 700
        assert gc.get_freeze_count() > 0
    finally:
        await exporter.stop()
        gc.unfreeze()
        gc.set_threshold(*before)
