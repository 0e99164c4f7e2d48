"""The package's shape, as docs/architecture.md draws it: layers import downwards only, no
import circle (function-level and TYPE_CHECKING imports count: hiding one is still one), the
simulator stands alone, and no module grows past ~300 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import found

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

# Lower numbers sit lower; a module may import its own part or a part with a lower number.
# probes, discovery and recovery share a layer and do not import each other.
LAYERS = {
    "exporter": 0,  # the package root: the version, nothing else
    "errors": 0,
    "util": 1,
    "logs": 1,
    "config": 2,
    "probes": 3,
    "discovery": 3,
    "recovery": 3,
    "preflight": 4,  # what run refuses beyond a valid file (recovery, /probe, reload tokens)
    "engine": 4,
    "metrics": 5,
    "server": 6,
    "runtime": 7,
    "cli": 8,
}
WIRING = {"cli", "runtime"}
MAX_LINES = 300
OVERSIZE = {
    # left for the round-of-checks change, which moves one round of checks out of it
    "server/probe_endpoint.py": 370,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in found(PACKAGE.rglob("*.py"), "modules of the exporter package"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every exporter module `module` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".") if is_package else module.split(".")[:-1]
            if node.level:
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base) + (f".{node.module}" if node.module else "")
            else:
                source = node.module or ""
            subs = [f"{source}.{alias.name}" for alias in node.names]
            names = subs if all(s in MODULES for s in subs) else [source, *subs]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


GRAPH = {m: set(_imported(m, p)) for m, p in MODULES.items()}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "exporter"


def test_the_graph_is_not_empty() -> None:
    assert sum(len(d) for d in GRAPH.values()) > 50
    assert "exporter.engine.monitor" in GRAPH["exporter.server.app"]


def test_every_part_has_a_layer() -> None:
    parts = {part(m) for m in MODULES} - {"simulate"}
    assert parts == set(LAYERS)


def test_imports_go_down_the_layers_only() -> None:
    wrong = []
    for module, deps in GRAPH.items():
        here = part(module)
        if here == "simulate":
            continue
        for dep in deps:
            there = part(dep)
            if there == here or (there == "simulate" and here in WIRING):
                continue
            if there == "simulate" or LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_simulate_imports_nothing_else_of_exporter() -> None:
    sim = [m for m in GRAPH if part(m) == "simulate"]
    assert sim
    wrong = [f"{m} -> {d}" for m in sim for d in GRAPH[m] if part(d) != "simulate"]
    assert not wrong


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_circle() -> None:
    assert _circles() == []


def test_the_circle_finder_finds_a_circle() -> None:
    GRAPH["exporter.errors"].add("exporter.cli")
    try:
        assert any("exporter.errors" in c for c in _circles())
    finally:
        GRAPH["exporter.errors"].discard("exporter.cli")


@pytest.mark.parametrize("module", sorted(MODULES), ids=str)
def test_no_module_over_300_lines(module: str) -> None:
    path = MODULES[module]
    rel = str(path.relative_to(PACKAGE))
    lines = len(path.read_text(encoding="utf-8").splitlines())
    limit = OVERSIZE.get(rel, MAX_LINES)
    assert lines <= limit, f"{rel}: {lines} lines (split it by job)"
    if rel in OVERSIZE:
        assert lines > MAX_LINES, f"{rel} is small now: drop it from OVERSIZE"


def test_httpx_is_imported_only_where_a_client_is_made() -> None:
    """~3 MiB an exporter without discovery or recovery never needs (issue 16's memory)."""
    code = "import sys, exporter.runtime, exporter.cli.run; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
