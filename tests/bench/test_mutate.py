"""`make mutate`'s configuration points at what exists (a renamed module or test file must not
silently drop out of the mutation run), and its pure parts read cosmic-ray's diffs right.
The run itself is minutes per module: `make mutate`, not part of `make test`."""

from __future__ import annotations

import re

import pytest
from cosmic_ray.plugins import operator_names

from bench.mutate import ROOT, _annotation_spans, expand, load
from bench.mutation_report import Outcome, failing_files, mutation_line, score

CFG = load()


def test_every_listed_module_and_test_file_exists() -> None:
    concrete = [m for m in CFG["modules"] if "*" not in m]
    assert len(concrete) >= 9  # the core modules of issue 28
    for module in concrete:
        assert (ROOT / module).is_file(), f"bench/mutation.toml names a missing module {module}"
    for module, spec in CFG["modules"].items():
        tests = [t for t in spec["tests"] if "*" not in t]
        assert tests, f"{module} has no concrete test file"
        for t in tests:
            assert (ROOT / t.split("::")[0]).is_file(), f"{module} -> missing {t}"


def test_excluded_operators_name_real_operators() -> None:
    names = list(operator_names())
    patterns = CFG["settings"]["exclude-operators"]
    assert patterns
    for p in patterns:
        assert any(re.match(p, n) for n in names), f"{p!r} matches no cosmic-ray operator"
    # what stays: the boundary and flip mutants real bugs look like
    kept = [n for n in names if not any(re.match(p, n) for p in patterns)]
    for needed in ("ReplaceComparisonOperator_Lt_LtE", "NumberReplacer", "AddNot"):
        assert any(needed in n for n in kept), needed


def test_hand_mutants_and_equivalents_are_complete_entries() -> None:
    hands = CFG.get("hand", [])
    assert len(hands) >= 10
    mapped = {
        m for pattern in CFG["modules"] for m in expand(pattern)
    }  # globs as the tool reads them
    for h in hands:
        assert h["module"] in mapped, h["name"]
        assert h["before"] and h["before"] != h["after"], h["name"]
    for e in CFG.get("equivalent", []):
        assert e["module"] in mapped and e["why"].strip(), e


def test_a_module_glob_matching_nothing_yet_is_empty_not_an_error() -> None:
    assert expand("exporter/no/such/*.py") == []
    assert expand("exporter/engine/rules.py") == ["exporter/engine/rules.py"]
    assert "exporter/engine/rules.py" in expand("exporter/engine/*.py")


def test_the_files_that_killed_a_mutant_are_read_from_the_summary() -> None:
    out = "F\n=== short test summary info ===\nFAILED tests/core/test_rules.py::test_x[a-b] - assert\nERROR tests/core/test_sse.py - boom\n"
    assert failing_files(out) == {"tests/core/test_rules.py", "tests/core/test_sse.py"}
    assert failing_files("timeout") == frozenset()


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        (
            "--- mutation diff ---\n--- aexporter/x.py\n+++ bexporter/x.py\n@@ -3,1 +3,1 @@\n"
            "-    if a > b:\n+    if a >= b:\n",
            ("if a > b:", "if a >= b:"),
        ),
        ("", ("", "")),
    ],
)
def test_the_mutated_line_is_read_from_the_diff(diff: str, expected: tuple[str, str]) -> None:
    assert mutation_line(diff) == expected


def test_score_counts_killed_over_non_equivalent() -> None:
    o = Outcome("m", killed=9, survived=["x"], equivalent=[("y", "why")], skipped=5)
    assert score(o) == 0.9
    o.killers = [frozenset({"tests/new.py"}), frozenset({"tests/old.py"}), frozenset()]
    assert score(o, frozenset({"tests/new.py"})) == 0.8  # the one only the new file kills
    assert score(Outcome("m")) is None


def test_annotations_are_found_only_where_they_are_never_evaluated() -> None:
    deferred = "from __future__ import annotations\ndef f(a: int | None) -> str | None:\n    x: int | None = 1\n"
    spans = _annotation_spans(deferred)
    assert ((2, 9), (2, 19)) in spans and ((2, 24), (2, 34)) in spans and ((3, 7), (3, 17)) in spans
    assert _annotation_spans(deferred.split("\n", 1)[1]) == []
