"""What a mutation run found, per module: the counts, the score, the survivors as one-line
diffs, and the table for docs/development.md. Pure functions over pytest's and cosmic-ray's
text (bench/mutate.py runs them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Outcome", "failing_files", "markdown", "mutation_line", "print_outcome", "score"]


@dataclass
class Outcome:
    """What one module's run found."""

    module: str
    killed: int = 0
    # per killed mutant, the test files that failed (empty: it hung or broke the run)
    killers: list[frozenset[str]] = field(default_factory=list)
    equivalent: list[tuple[str, str]] = field(default_factory=list)  # (diff line, why)
    survived: list[str] = field(default_factory=list)  # one-line diffs
    skipped: int = 0
    incompetent: int = 0
    error: str = ""
    stale: list[dict[str, str]] = field(default_factory=list)  # equivalents matching nothing

    @property
    def counted(self) -> int:
        return self.killed + len(self.survived)


def score(o: Outcome, without: frozenset[str] = frozenset()) -> float | None:
    """Killed over non-equivalent mutants (None when none ran); with `without`, the score
    those test files' absence would leave (a mutant only they kill counts as a survivor)."""
    if not o.counted:
        return None
    only_theirs = sum(1 for k in o.killers if k and k <= without)
    return (o.killed - only_theirs) / o.counted


_FAILED = re.compile(r"^(?:FAILED|ERROR) ([^\s:]+\.py)", re.MULTILINE)


def failing_files(output: str) -> frozenset[str]:
    """The test files pytest's short summary (-rfE) names as failed or broken."""
    return frozenset(_FAILED.findall(output))


def mutation_line(diff: str) -> tuple[str, str]:
    """(line before, line after) of a one-line mutant's unified diff, stripped."""
    before = [
        x[1:].strip() for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")
    ]
    after = [
        x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")
    ]
    return " | ".join(before), " | ".join(after)


def print_outcome(o: Outcome, goal: float, without: frozenset[str]) -> None:
    s = score(o)
    if o.error:
        print(f"\n== {o.module}: ERROR {o.error}")
        return
    mark = "" if s is None or s >= goal else f"  (below the goal of {goal:.0%})"
    shown = "n/a" if s is None else f"{s:.1%}"
    print(
        f"\n== {o.module}: {shown} killed ({o.killed} of {o.counted}; {len(o.equivalent)} equivalent, "
        f"{o.skipped} skipped, {o.incompetent} incompetent){mark}"
    )
    if without:
        w = score(o, without)
        print(f"  without {', '.join(sorted(without))}: {'n/a' if w is None else f'{w:.1%}'}")
    for line in o.survived:
        print(f"  survived  {line}")
    for line, why in o.equivalent:
        print(f"  equivalent {line}\n             ({why})")
    for e in o.stale:
        print(f"  stale entry (matches nothing any more): {e['before']!r} -> {e['after']!r}")


def markdown(outcomes: list[Outcome]) -> str:
    rows = ["| module | killed | non-equivalent | equivalent | score |", "|---|---|---|---|---|"]
    for o in outcomes:
        s = score(o)
        rows.append(
            f"| `{o.module}` | {o.killed} | {o.counted} | {len(o.equivalent)} | "
            f"{'n/a' if s is None else f'{s:.1%}'} |"
        )
    return "\n".join(rows)
