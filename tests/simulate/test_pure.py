"""Pure parts: answers and token counts, fault specs, CLI parsing, port ranges."""

from __future__ import annotations

import pytest

from exporter.simulate import FAULT_KINDS, FaultSpec, SimulatorConfig
from exporter.simulate.answer import (
    PROBE_PROMPT,
    count_prompt_tokens,
    plan_answer,
    tokenize,
)
from exporter.simulate.cli import build_parser, config_from_args, parse_fault
from exporter.simulate.farm import parse_port_range
from exporter.simulate.faults import FaultBoard
from exporter.simulate.metrics import build_1_2_5_buckets

PROBE = [{"role": "user", "content": PROBE_PROMPT}]


def test_probe_answer_is_paris_in_two_deltas_plus_eos() -> None:
    plan = plan_answer(PROBE, 8)
    assert plan.pieces == ("Par", "is", "")
    assert (plan.text, plan.finish_reason, plan.completion_tokens) == ("Paris", "stop", 3)


@pytest.mark.parametrize(
    ("limit", "text", "reason"),
    [(1, "Par", "length"), (2, "Paris", "length"), (3, "Paris", "stop")],
)
def test_max_tokens_cut(limit: int, text: str, reason: str) -> None:
    plan = plan_answer(PROBE, limit)
    assert (plan.text, plan.finish_reason, plan.completion_tokens) == (text, reason, min(limit, 3))


def test_tokenize_keeps_text() -> None:
    text = "The quick brown fox, jumps over the extraordinarily lazy dog."
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert all(1 <= len(p) <= 4 for p in pieces)


def test_other_prompts_deterministic_and_distinct() -> None:
    a = [{"role": "user", "content": "What is monitoring?"}]
    b = [{"role": "user", "content": "What is alerting?"}]
    assert plan_answer(a, 1000) == plan_answer(a, 1000)
    assert plan_answer(a, 1000).text != plan_answer(b, 1000).text
    assert plan_answer(a, 1000).finish_reason == "stop"


def test_prompt_tokens_about_four_chars_each() -> None:
    short = count_prompt_tokens(PROBE)
    long = count_prompt_tokens([{"role": "user", "content": "x" * 4000}])
    assert 10 <= short <= 30
    assert 1000 <= long <= 1020
    parts = [{"role": "user", "content": [{"type": "text", "text": PROBE_PROMPT}]}]
    assert count_prompt_tokens(parts) == short


def test_fault_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultSpec(kind="meteor")
    with pytest.raises(ValueError, match="rate"):
        FaultSpec(kind="error_rate", rate=1.5)
    with pytest.raises(ValueError, match="unknown fault field"):
        FaultSpec.from_dict({"kind": "slow", "sec": 1})
    assert FaultSpec(kind="loading").lifetime == 30.0
    assert FaultSpec(kind="down").lifetime is None
    assert FaultSpec(kind="slow", seconds=5).lifetime is None
    assert FaultSpec(kind="slow", duration=2).lifetime == 2
    assert set(FAULT_KINDS) >= {
        "down", "crash", "hang", "health_lies", "slow", "error_rate", "loading", "garbage",
        "wrong_answer", "stall", "drip", "reset", "model_swap", "overloaded",
    }  # fmt: skip


def test_fault_board_expiry_and_replace() -> None:
    board = FaultBoard()
    board.set(FaultSpec(kind="loading", seconds=10), now=100.0)
    board.set(FaultSpec(kind="slow", seconds=1), now=100.0)
    board.set(FaultSpec(kind="slow", seconds=2), now=101.0)
    assert board.get("slow", 105.0) == FaultSpec(kind="slow", seconds=2)
    assert board.get("loading", 109.9) is not None
    assert board.get("loading", 110.0) is None
    assert [s.kind for s in board.active(200.0)] == ["slow"]
    board.clear("slow")
    assert board.active(200.0) == []


def test_parse_fault_forms() -> None:
    assert parse_fault("hang") == FaultSpec(kind="hang")
    assert parse_fault("error_rate:rate=0.25,status=503") == FaultSpec(
        kind="error_rate", rate=0.25, status=503
    )
    assert parse_fault("model_swap:model=org/Other-1B") == FaultSpec(
        kind="model_swap", model="org/Other-1B"
    )
    assert parse_fault('{"kind": "slow", "seconds": 2}') == FaultSpec(kind="slow", seconds=2)
    with pytest.raises(ValueError):
        parse_fault("slow:seconds")


def test_cli_config() -> None:
    args = build_parser().parse_args(
        ["--port", "8000", "--fast", "--fault", "wrong_answer", "--api-key", "zq-secret-9"]
    )
    cfg = config_from_args(args)
    assert (cfg.port, cfg.admin_port, cfg.ttft_seconds, cfg.startup_seconds) == (
        8000,
        18000,
        0.0,
        0.0,
    )
    assert cfg.allow_exit is True and cfg.faults == (FaultSpec(kind="wrong_answer"),)
    assert "zq-secret-9" not in repr(cfg) and cfg.api_key == "zq-secret-9"
    cfg = config_from_args(build_parser().parse_args(["--port", "0", "--no-admin"]))
    assert cfg.admin_port is None
    cfg = config_from_args(build_parser().parse_args(["--port", "60000"]))
    assert cfg.admin_port == 0


def test_child_args_drop_supervisor_flags() -> None:
    from exporter.simulate.cli import _child_args

    argv = ["--supervise", "--pidfile", "/p", "--port", "1", "--restart-count-file=/c", "--fast"]
    assert _child_args(argv) == ["--port", "1", "--fast"]


def test_port_ranges() -> None:
    assert parse_port_range("9000-9002,9005") == [9000, 9001, 9002, 9005]
    assert len(parse_port_range("9000-9999")) == 1000
    for bad in ("", "x", "9002-9000", "0-3"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(ttft_seconds=-1)
    with pytest.raises(ValueError):
        SimulatorConfig(port=70000)
    fast = SimulatorConfig(startup_seconds=5).fast()
    assert (fast.startup_seconds, fast.ttft_seconds, fast.token_interval_seconds) == (0, 0, 0)


def test_vllm_buckets() -> None:
    assert build_1_2_5_buckets(100) == [1, 2, 5, 10, 20, 50, 100]
    assert build_1_2_5_buckets(262144)[-1] == 200000


def test_the_readme_lists_every_fault_kind_once() -> None:
    """exporter/simulate/README.md's fault table lacked `overload` and `server_error`, which
    the README's drill uses (issue 22): every kind is a row, and no row names a kind that
    does not exist."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "exporter/simulate/README.md").read_text()
    table = readme[readme.index("## Faults") : readme.index("## Admin API")]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()
            if line.startswith("| `")]  # fmt: skip
    assert sorted(rows) == sorted(FAULT_KINDS), sorted(set(rows) ^ set(FAULT_KINDS))
