"""What the probes derive once per target config (its Route, its secrets) is forgotten with the
config: a reload or a thousand /probe rounds leave nothing behind."""

from __future__ import annotations

import gc

from exporter.config import TargetConfig
from exporter.probes import redact, route
from exporter.util.identity import ByIdentity


def test_a_value_lives_as_long_as_its_object() -> None:
    kept: ByIdentity[object, str] = ByIdentity()

    class Thing:
        pass

    things = [Thing() for _ in range(50)]
    for i, thing in enumerate(things):
        kept.put(thing, f"v{i}")
    assert [kept.get(t) for t in things[:3]] == ["v0", "v1", "v2"] and len(kept) == 50
    del things, thing
    gc.collect()
    assert len(kept) == 0
    assert kept.get(Thing()) is None


def test_routes_and_secrets_of_dropped_targets_are_forgotten() -> None:
    before = (len(route._ROUTES), len(redact._KEPT))
    targets = [
        TargetConfig(name=f"r{i}", url=f"https://u:pw-{i}@h{i}:8000", api_key=f"sk-{i:08d}")
        for i in range(200)
    ]
    for target in targets:
        assert route.route_for(target) is None  # nothing configured: direct, system store
        assert f"sk-{int(target.name[1:]):08d}" in redact.secrets_of(target)
    assert len(route._ROUTES) == before[0] + 200 and len(redact._KEPT) == before[1] + 200
    del targets, target
    gc.collect()
    assert (len(route._ROUTES), len(redact._KEPT)) == before
