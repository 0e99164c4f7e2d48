"""The episode memory of the recovery receiver (`Dedup`): Alertmanager's retries and repeats
of one episode hit it, and when it is full the episode least recently seen falls out."""

from __future__ import annotations

import pytest

from exporter.recovery.dedup import Dedup


@pytest.mark.parametrize(
    ("name", "size", "adds", "kept", "gone"),
    [
        ("room for all", 3, ["a", "b", "c"], ["a", "b", "c"], []),
        ("exactly full keeps all", 2, ["a", "b"], ["a", "b"], []),
        ("one too many: the oldest falls out", 2, ["a", "b", "c"], ["b", "c"], ["a"]),
        (
            "many too many: the newest stay",
            2,
            ["a", "b", "c", "d", "e"],
            ["d", "e"],
            ["a", "b", "c"],
        ),
        ("adding again refreshes", 2, ["a", "b", "a", "c"], ["a", "c"], ["b"]),
        ("size one keeps the last", 1, ["a", "b"], ["b"], ["a"]),
    ],
)
def test_lru_order(name: str, size: int, adds: list[str], kept: list[str], gone: list[str]) -> None:
    d = Dedup(size)
    for key in adds:
        d.add(key)
    assert len(d) == len(kept), name
    for key in gone:  # misses first: a hit would refresh
        assert key not in d, name
    for key in kept:
        assert key in d, name


def test_a_hit_refreshes_its_place() -> None:
    """An episode Alertmanager keeps repeating must not fall out before a quiet one."""
    d = Dedup(2)
    d.add(("fp1", "t0"))
    d.add(("fp2", "t0"))
    assert ("fp1", "t0") in d  # a repeat of the first episode
    d.add(("fp3", "t0"))
    assert ("fp2", "t0") not in d
    assert ("fp1", "t0") in d and ("fp3", "t0") in d


def test_discard_forgets_one_episode() -> None:
    d = Dedup(3)
    d.add("a")
    d.add("b")
    d.discard("a")
    d.discard("never")  # not there: nothing happens
    assert "a" not in d and "b" in d and len(d) == 1
