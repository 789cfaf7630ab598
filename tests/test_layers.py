"""Imports follow the flow: corpus → index → critics → graph → store → export. A module imports
only from its own package or from a lower layer, so there are no upward imports, and no module
imports itself back through others, inside a package or across them, including lazy imports
inside functions (a cycle closed by a lazy import is hidden, not absent)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "redraft"

LAYERS = {
    # Shared helpers: errors, paths, version, atomic writes, package data, model loading rules.
    "_": 0,
    "errors": 0,
    # What the graph stands on: the index, the datasets, the store's contract.
    "provenance": 1,
    "datasets": 1,
    "store": 1,
    # What the record measures and what it exports, read from the store.
    "analysis": 2,
    "export": 2,
    # Models and ground truth.
    "agents": 2,
    "judges": 2,
    "critics": 3,
    # How a revision is asked for and judged: strategies, the loop's config, verdicts.
    "corrections": 4,
    "graphs": 5,
    "experiments": 6,
    "training": 6,
    # The faces: the CLI and the package's own namespace.
    "view": 7,
    "cli": 7,
    "__main__": 7,
    "": 7,
}


def package_of(module: str) -> str:
    """``redraft.store.sql`` → ``store``; ``redraft._hf`` → ``_``; ``redraft`` → ``""``."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return "_" if parts[1].startswith("_") and parts[1] != "__main__" else parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def redraft_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "redraft" else [f"redraft.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names if n == "redraft" or n.startswith("redraft.")]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name == "redraft" or a.name.startswith("redraft.")]
    return out


def test_every_import_goes_to_the_same_package_or_a_lower_layer():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        mine = package_of(importer)
        for line, imported in redraft_imports(path):
            theirs = package_of(imported)
            if theirs not in LAYERS:  # `from redraft import x` of a submodule x
                theirs = package_of(f"redraft.{imported.split('.')[1]}")
            if theirs == mine or LAYERS[theirs] == LAYERS[mine] in (0, 7):
                continue  # within a package, among the shared helpers, among the faces
            if LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(f"{importer}:{line} imports {imported} (layer {LAYERS[theirs]} >= {LAYERS[mine]})")
    assert wrong == []


def runtime_edges(path: Path, modules: set[str]) -> set[str]:
    """The redraft modules ``path`` imports when it runs (lazy imports included; imports under
    ``if TYPE_CHECKING:`` excluded, as they never run). ``from a.b import c`` is an edge to
    ``a.b.c`` when that is a module, else to ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    edges: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            edges |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names}
    return edges & modules


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    """Oracle for the test below: a hand-made graph with one 3-cycle and a self-free tail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_anywhere_not_even_inside_a_package():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {m: runtime_edges(p, modules) - {m} for m, p in paths.items()}
    assert cycles(graph) == []


def test_every_package_has_a_layer():
    packages = {package_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert packages <= set(LAYERS)


def test_the_index_layer_loads_neither_the_graph_nor_the_database():
    code = (
        "import sys, redraft, redraft.provenance, redraft.provenance.build; "
        "heavy = sorted(m for m in ('langgraph', 'sqlalchemy', 'alembic') if m in sys.modules); "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
