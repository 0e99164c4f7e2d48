"""The engine view over time (`fold_sample` and what an `EngineView` concludes), as tables of
timed samples: stalled only when work waited and generation froze for `stall_after` over
several samples; busy only while progressing; saturation and freshness at their boundaries.
Through the public functions only: how the view is stored is the parser's business."""

from __future__ import annotations

import pytest

from exporter.config import TargetConfig
from exporter.engine.policy import engine_policy
from exporter.engine.progress import EnginePolicy, EngineView, fold_sample
from exporter.probes.results import EngineSample

EP = EnginePolicy(stall_after=20, queue_saturated=5, kv_saturated=0.8, slow_chat=15, fresh_for=20)


def sample(
    progress: float | None, running: float = 1, waiting: float = 0, kv: float | None = 0.2
) -> EngineSample:
    return EngineSample("vllm", running, waiting, kv, progress, progress)


def fold(*steps: tuple[float, EngineSample]) -> EngineView:
    view: EngineView | None = None
    for t, s in steps:
        view = fold_sample(view, s, t)
    assert view is not None, "the table ran"
    return view


def frozen(
    start: float, stop: float, step: float = 5, **kw: float
) -> list[tuple[float, EngineSample]]:
    n = int((stop - start) / step) + 1
    return [(start + i * step, sample(150, **kw)) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "steps", "stalled"),
    [
        ("work pending, counter frozen for stall_after", [(0, sample(100)), *frozen(5, 25)], True),
        ("one sample short of stall_after", [(0, sample(100)), *frozen(5, 24, step=19)], False),
        (
            "exactly stall_after since the last progress",
            [(0, sample(150)), (10, sample(150)), (20, sample(150))],
            True,
        ),
        (
            "just under stall_after",
            [(0, sample(150)), (10, sample(150)), (19.9, sample(150))],
            False,
        ),
        (
            "two quiet samples after the last progress are enough",
            [(0, sample(100)), (5, sample(150)), (15, sample(150)), (25, sample(150))],
            True,
        ),
        (
            "a single quiet sample after a long gap is a pause, not a stall",
            [(0, sample(150)), (100, sample(150))],
            False,
        ),
        ("the counter moves", [(t, sample(100 + t)) for t in range(0, 60, 5)], False),
        ("nothing pending: idle, not stalled", frozen(0, 60, running=0), False),
        (
            "no progress counter exported: nothing concluded",
            [(t, sample(None)) for t in range(0, 60, 5)],
            False,
        ),
        (
            "work after a long idle spell is not a stall at once",
            [
                *frozen(0, 100, running=0),
                (105, sample(150)),
                (110, sample(150)),
                (115, sample(150)),
            ],
            False,
        ),
        (
            "... but it is once it froze for stall_after",
            [*frozen(0, 100, running=0), *frozen(105, 120)],
            True,
        ),
        (
            "a counter that went backwards (restart) starts the baseline over",
            [*frozen(0, 60), (65, sample(10)), (70, sample(10)), (75, sample(10))],
            False,
        ),
        (
            "queued work counts as pending",
            [(0, sample(150, running=0, waiting=3)), *frozen(5, 25, running=0, waiting=3)],
            True,
        ),
    ],
)
def test_stalled(name: str, steps: list[tuple[float, EngineSample]], stalled: bool) -> None:
    view = fold(*steps)
    assert view.stalled(view.time, EP) is stalled, (name, view)


@pytest.mark.parametrize(
    ("name", "waiting", "kv", "saturated"),
    [
        ("queue at queue_saturated", 5, 0.2, "5 requests waiting"),
        ("queue just under", 4.9, 0.2, None),
        ("KV cache at kv_saturated", 0, 0.8, "KV cache 80% used"),
        ("KV cache just under", 0, 0.79, None),
        ("no KV gauge (TGI)", 0, None, None),
        ("both: the queue is named", 9, 0.95, "9 requests waiting"),
    ],
)
def test_saturated(name: str, waiting: float, kv: float | None, saturated: str | None) -> None:
    view = fold((0, sample(100, running=4, waiting=waiting, kv=kv)))
    assert view.saturated(EP) == saturated, name


def test_busy_means_saturated_and_progressing_never_stalled() -> None:
    progressing = fold(*[(t, sample(100 + 10 * t, running=8, kv=0.95)) for t in range(0, 30, 5)])
    assert progressing.busy(25, EP) == "KV cache 95% used"
    stalled_full = fold((0, sample(150, running=8, kv=0.95)), *frozen(5, 30, running=8, kv=0.95))
    assert stalled_full.stalled(30, EP)
    assert stalled_full.saturated(EP) is not None
    assert stalled_full.busy(30, EP) is None  # a dead engine with a full cache is not busy
    assert progressing.busy(25 + 21, EP) is None  # a stale view says nothing


@pytest.mark.parametrize(("age", "fresh"), [(0, True), (20, True), (20.5, False)])
def test_a_view_older_than_fresh_for_says_nothing(age: float, fresh: bool) -> None:
    view = fold((0, sample(150)), *frozen(5, 30))
    assert view.fresh(30 + age, EP) is fresh
    assert view.stalled(30 + age, EP) is fresh


def test_samples_at_the_same_time_or_out_of_order_restart_the_view() -> None:
    view = fold((0, sample(100)), (5, sample(200)))
    assert view.tokens_per_second == 20.0  # 100 tokens in 5 s
    again = fold_sample(view, sample(300), 5)  # same timestamp: no division by zero
    assert again.time == 5 and again.tokens_per_second is None
    older = fold_sample(view, sample(300), 4)
    assert older.time == 4 and not older.stalled(4, EP)


def test_a_restart_is_counted_and_said() -> None:
    view = fold((0, sample(500)), (5, sample(600)), (10, sample(3)))
    assert view.resets == 1 and "backwards" in view.note
    view = fold_sample(view, sample(50), 15)
    assert view.resets == 1 and view.tokens_per_second == pytest.approx(47 / 5)


def test_describe_names_the_queue_the_cache_and_the_stall() -> None:
    view = fold(
        (0, sample(150, running=2, waiting=4, kv=0.5)), *frozen(5, 25, running=2, waiting=4, kv=0.5)
    )
    text = view.describe()
    for part in ("vllm", "running=2", "waiting=4", "kv=50%", "no progress for 25s"):
        assert part in text, text
    idle = fold((0, sample(100, running=0)), (5, sample(100, running=0)))
    assert "no progress" not in idle.describe()


def test_default_thresholds() -> None:
    """The documented defaults (config/engine.py), from a target configured with none (a 5 s
    engine interval, a 30 s chat timeout), and the view's own."""
    configured = engine_policy(TargetConfig(name="t", url="http://127.0.0.1:9"), 5.0)
    assert configured is not None
    for ep in (configured, EnginePolicy()):
        got = (ep.stall_after, ep.queue_saturated, ep.kv_saturated, ep.slow_chat, ep.fresh_for)
        assert got == (20, 5, 0.8, 15, 20)


def test_a_queue_without_a_running_gauge_still_counts_as_pending() -> None:
    """A server (or configured names) exporting only the waiting count: frozen with a queue
    is a stall all the same."""
    steps = [(t, sample(150, running=None, waiting=1)) for t in range(0, 30, 5)]  # type: ignore[arg-type]
    assert fold(*steps).stalled(25, EP)


def test_a_sample_that_lost_its_counter_concludes_nothing() -> None:
    view = fold((0, sample(100)), (5, sample(None)), (10, sample(None)), (30, sample(None)))
    assert view.resets == 0 and not view.stalled(30, EP)


def raw(progress: float | None, generated: float | None) -> EngineSample:
    return EngineSample("llamacpp", 1, 0, None, progress, generated)


@pytest.mark.parametrize(
    ("name", "steps", "resets"),
    [
        ("the progress counter alone went back", [(0, raw(500, None)), (5, raw(10, None))], 1),
        ("the token counter alone went back", [(0, raw(None, 500)), (5, raw(None, 10))], 1),
        ("decode calls back, tokens not exported", [(0, raw(500, 40)), (5, raw(10, None))], 1),
        ("a counter appearing is no restart", [(0, raw(None, None)), (5, raw(100, 100))], 0),
        ("both rising", [(0, raw(100, 40)), (5, raw(200, 60))], 0),
        ("tokens no longer exported", [(0, raw(100, 40)), (5, raw(200, None))], 0),
    ],
)
def test_a_restart_is_any_counter_going_back(
    name: str, steps: list[tuple[float, EngineSample]], resets: int
) -> None:
    assert fold(*steps).resets == resets, name


def test_describe_a_progressing_engine_and_a_first_sample() -> None:
    moving = fold(*[(t, sample(100 + 50 * t, running=3)) for t in range(0, 15, 5)])
    assert moving.describe() == "vllm running=3 waiting=0 kv=20% 50.0 tok/s"
    assert fold((0, sample(100, running=3))).describe() == "vllm running=3 waiting=0 kv=20%"


def test_describe_counts_even_a_short_freeze() -> None:
    view = fold((0, sample(100, running=3)), (0.6, sample(100, running=3)))
    assert view.describe().endswith("no progress for 1s")
