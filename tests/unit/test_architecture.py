"""The layering of docs/ARCHITECTURE.md, kept from regressing: layers, no cycles, small modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[2] / "src" / "replyflow"
MAX_MODULE_LINES = 400


def test_layers_contract_holds() -> None:
    """import-linter's contract in pyproject.toml: no import from a lower layer into a higher one,
    and the stage packages (ingest, stream, reply) never import each other."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=SRC.parents[1], check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("replyflow")
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a graph with a circle is reported."""
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph) == [["a.x", "a.y"]]


def test_no_module_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_code_is_lint_clean() -> None:
    """ruff (config in pyproject.toml): no unused or undefined names, sorted imports."""
    ruff = Path(sys.executable).with_name("ruff")
    root = SRC.parents[1]
    result = subprocess.run([str(ruff), "check", "src", "tests", "bench"], capture_output=True, text=True, cwd=root,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:]


def test_no_symlinks_or_local_environments_are_tracked() -> None:
    """A committed ``.venv`` or ``.cache`` symlink replaces (deletes) the real one on checkout."""
    root = SRC.parents[1]
    if not (root / ".git").exists():
        return  # an sdist or a copy without history: nothing is tracked
    listing = subprocess.run(["git", "ls-files", "-s"], capture_output=True, text=True, cwd=root, check=True).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000 ")]
    local = [line.split("\t", 1)[1] for line in listing.splitlines()
             if line.split("\t", 1)[1].split("/", 1)[0] in {".venv", ".cache", "var"}]
    assert links == [] and local == []
