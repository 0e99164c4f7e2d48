"""The packed ring of recent results reads back exactly what the deque of dicts it replaced
held (issue 16: the views' JSON must not change), and keeps only the newest entries."""

from __future__ import annotations

import gc
import random
from collections import deque
from typing import Any

from exporter.engine.recent import RECENT, Recent
from exporter.probes.results import Check


def _old_entry(
    time: float, check: Check, success: bool, duration: float, ttft: float | None
) -> dict[str, Any]:
    """What monitor.record appended before the ring (kept here as the reference)."""
    return {
        "time": time,
        "check": check.value,
        "success": success,
        "duration": round(duration, 4),
        "ttft": None if ttft is None else round(ttft, 4),
    }


def test_reads_back_what_the_deque_of_dicts_held_through_wrap_around() -> None:
    rng = random.Random(16)
    ring, reference = Recent(), deque[dict[str, Any]](maxlen=RECENT)
    checks = tuple(Check)
    for n in range(1, 3 * RECENT + 8):
        entry = (
            1_700_000_000 + n * 5.123456789,
            checks[n % len(checks)],
            rng.random() < 0.7,
            rng.random() * rng.choice([0.001, 1.0, 90.0]),
            None if n % 3 else rng.random() * 2,
        )
        ring.append(*entry)
        reference.append(_old_entry(*entry))
        assert len(ring) == len(reference) == min(n, RECENT)
        assert list(ring) == list(reference), n
    assert list(ring)[-1]["time"] == 1_700_000_000 + (3 * RECENT + 7) * 5.123456789


def test_empty_one_entry_and_nothing_for_the_gc() -> None:
    ring = Recent()
    assert list(ring) == []
    ring.append(1.0, Check.CHAT, True, 0.5, 0.25)
    assert list(ring) == [
        {"time": 1.0, "check": "chat", "success": True, "duration": 0.5, "ttft": 0.25}
    ]
    # nothing inside for the cyclic GC to walk (the deque held a dict per entry)
    inside = [o for o in gc.get_referents(ring) if o is not Recent]
    assert inside
    assert not any(gc.is_tracked(o) for o in inside)


def test_durations_come_back_as_they_went_in_and_an_absurd_one_fits() -> None:
    recent = Recent(4)
    for duration in (0.1234, 12.3456, 1e40):
        recent.append(1764000000.0, Check.CHAT, True, duration, duration / 2)
    got = [(e["duration"], e["ttft"]) for e in recent]
    assert got[:2] == [(0.1234, 0.0617), (12.3456, 6.1728)]
    assert got[2] == (1e9, 1e9)
