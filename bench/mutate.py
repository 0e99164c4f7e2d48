"""Mutation testing of the core modules (issue 28): `make mutate`, or
`python -m bench.mutate [--module exporter/engine/rules.py ...] [--jobs N] [--markdown]`.

Each module of bench/mutation.toml is mutated by cosmic-ray in a throw-away copy of the
repository (cosmic-ray edits the file on disk; the work tree stays untouched, and modules can
run side by side), its mapped test files run once per mutant. Prints per module the score
(killed / non-equivalent) and every surviving mutant as a one-line diff.
Mutants inside annotations are skipped before the run: under `from __future__ import
annotations` an annotation is never evaluated, so changing it changes nothing.
"""

from __future__ import annotations

import argparse
import ast
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.mutation_report import (
    Outcome,
    failing_files,
    markdown,
    mutation_line,
    print_outcome,
    score,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "mutation.toml"
CR_BIN = Path(sys.executable).parent / "cosmic-ray"
# plugins the warm server imported before pytest started cannot have their asserts rewritten
QUIET = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


__all__ = ["expand", "load", "main", "run_module"]


def _killed(out: Outcome, output: str) -> None:
    out.killed += 1
    out.killers.append(failing_files(output))


def load(path: Path = CONFIG) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def expand(pattern: str, root: Path = ROOT) -> list[str]:
    """Repository-relative paths for a path, a pytest node id (file::test) or a glob, sorted."""
    if not glob.has_magic(pattern):
        return [pattern] if (root / pattern.split("::")[0]).exists() else []
    return sorted(str(Path(p).relative_to(root)) for p in glob.glob(str(root / pattern)))


def _annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of the annotations, when the module defers them."""
    tree = ast.parse(source)
    if not any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    ):
        return []
    anns: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            anns.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            anns.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            anns.append(node.annotation)
    return [
        ((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
        for a in anns
        if a is not None
    ]


def _copy_tree(dest: Path) -> None:
    """The repository as it is now (tracked and new files, not ignored ones)."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _skip_unwanted(session: Path, module: Path, exclude: list[str]) -> int:
    """Mark excluded operators and annotation mutants as skipped before the run."""
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    pattern = re.compile("|".join(f"(?:{e})" for e in exclude)) if exclude else None
    spans = _annotation_spans(module.read_text())
    skipped = 0
    with use_db(str(session)) as db:
        for item in list(db.pending_work_items):
            why = ""
            for m in item.mutations:
                if pattern is not None and pattern.match(m.operator_name):
                    why = "operator excluded"
                elif any(a <= tuple(m.start_pos) < b for a, b in spans):
                    why = "inside an annotation (never evaluated)"
            if why:
                db.set_result(
                    item.job_id, WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED)
                )
                skipped += 1
    return skipped


def run_module(
    module: str, tests: list[str], cfg: dict[str, Any], hand_only: bool = False
) -> Outcome:
    """Mutate one module against its tests in a fresh copy; classify every mutant."""
    out = Outcome(module)
    settings = cfg["settings"]
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        # -x: a mutant's run ends at its first failing test; the short summary names its file
        # (--without puts those files last, so a mutant the others kill is theirs)
        sock = str(work / "pytest.sock")
        command = [sys.executable, "-S", "-m", "bench.mutation_server", "client", sock]
        command += ["-x", "-q", "-rfE", "-p", "no:cacheprovider", *QUIET, *tests]
        timeout = float(settings["timeout"])
        (work / "cr.toml").write_text(
            "[cosmic-ray]\n"
            f"module-path = {module!r}\n"
            f"timeout = {timeout + 30}\n"
            "excluded-modules = []\n"
            f"test-command = {shlex.join(command)!r}\n"
            '[cosmic-ray.distributor]\nname = "local"\n'
        )
        env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        with _warm_pytest(work, sock, timeout, env):
            baseline = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
            if baseline.returncode != 0:
                out.error = f"tests fail without a mutant:\n{baseline.stdout[-2000:]}"
                return out
            if not hand_only:
                _run_cosmic_ray(out, work, env, cfg)
            for hand in cfg.get("hand", []):
                if hand["module"] == module:
                    _run_hand(out, hand, work, command, env, timeout + 30)
    return out


@contextmanager
def _warm_pytest(work: Path, sock: str, timeout: float, env: dict[str, str]) -> Iterator[None]:
    """bench/mutation_server.py for this copy: pytest imported once, a fork per mutant."""
    cmd = [sys.executable, "-m", "bench.mutation_server", "serve", sock, str(work), str(timeout)]
    server = subprocess.Popen(cmd, cwd=work, env=env)
    try:
        for _ in range(600):
            if Path(sock).exists():
                break
            time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(10)


def _run_cosmic_ray(out: Outcome, work: Path, env: dict[str, str], cfg: dict[str, Any]) -> None:
    """cosmic-ray's own mutants of the module: init, skip the unwanted, run, classify."""
    session = work / "session.sqlite"
    for step in ("init", "exec"):
        if step == "exec":
            exclude = list(cfg["settings"].get("exclude-operators", []))
            out.skipped = _skip_unwanted(session, work / out.module, exclude)
        subprocess.run(
            [str(CR_BIN), step, "cr.toml", str(session)],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
    _classify(out, session, cfg.get("equivalent", []))


def _run_hand(
    out: Outcome,
    hand: dict[str, str],
    work: Path,
    command: list[str],
    env: dict[str, str],
    timeout: float,
) -> None:
    """A mutant written by hand (a bug no operator makes: two rules swapped, a call dropped)."""
    path = work / hand["module"]
    source = path.read_text()
    shown = f"hand: {hand['name']}"
    if source.count(hand["before"]) != 1:
        out.stale.append({"before": hand["before"], "after": f"{hand['after']} ({shown})"})
        return
    path.write_text(source.replace(hand["before"], hand["after"]))
    try:
        run = subprocess.run(
            command,
            cwd=work,
            env=env,
            capture_output=True,
            timeout=timeout,
        )
        killed, output = run.returncode != 0, run.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        killed, output = True, ""
    finally:
        path.write_text(source)
    if killed:
        _killed(out, output)
    else:
        out.survived.append(shown)


def _classify(out: Outcome, session: Path, equivalents: list[dict[str, str]]) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    mine = [e for e in equivalents if e["module"] == out.module]
    used: set[int] = set()
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome is WorkerOutcome.SKIPPED:
                continue
            if (
                result.worker_outcome is not WorkerOutcome.NORMAL
                or result.test_outcome is TestOutcome.INCOMPETENT
            ):
                out.incompetent += 1
                continue
            if result.test_outcome is TestOutcome.KILLED:
                _killed(out, result.output or "")
                continue
            before, after = mutation_line(result.diff or "")
            line = item.mutations[0].start_pos[0]
            shown = f"{line}: {before}  ->  {after}  [{item.mutations[0].operator_name}]"
            for i, e in enumerate(mine):
                if e["before"].strip() == before and e["after"].strip() == after:
                    out.equivalent.append((shown, e["why"]))
                    used.add(i)
                    break
            else:
                out.survived.append(shown)
    out.stale = [e for i, e in enumerate(mine) if i not in used]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--module",
        action="append",
        help="only this module (repeatable; a path of bench/mutation.toml)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="modules run side by side (default 1)")
    parser.add_argument(
        "--hand-only", action="store_true", help="only the hand-written mutants (seconds)"
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        help="also print the score these test files' absence would leave (repeatable): "
        "the score before they were written, from the same run",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="also print the table for docs/development.md"
    )
    args = parser.parse_args(argv)
    cfg = load()
    plan: list[tuple[str, list[str]]] = []
    for pattern, spec in cfg["modules"].items():
        modules = expand(pattern)
        if not modules:
            print(f"({pattern}: no such module yet)")
        tests = [t for p in spec["tests"] for t in expand(p)]
        tests = list(dict.fromkeys(tests))  # in the listed order: the fast direct tests first
        tests.sort(key=lambda t: t.split("::")[0] in args.without)  # ... but --without's last
        plan += [(m, tests) for m in modules if not args.module or m in args.module]
    if not plan:
        print("nothing to mutate", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda p: run_module(p[0], p[1], cfg, args.hand_only), plan))
    goal = float(cfg["settings"]["goal"])
    for o in outcomes:
        print_outcome(o, goal, frozenset(args.without))
    if args.markdown:
        print("\n" + markdown(outcomes))
    failed = [o for o in outcomes if o.error or (score(o) or 1.0) < goal]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
