"""No import cycles among the product's modules.

A cycle makes the import order decide what works: a module that runs first sees its partner
half-initialised, and a change far away breaks an import that has not changed. Function-level
imports count too: moving an import into a function hides a cycle from Python, not from the
reader, who still has to know both modules to change either. Only imports under
`if TYPE_CHECKING:` are left out, since they never run.

The graph is read from the source with `ast` (nothing is imported), over the `nas` package and
the three folders installed as its sub-packages (README, "Map of the code").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"nas": "nas", "search_spaces": "nas.search_spaces", "evaluators": "nas.evaluators",
           "storage": "nas.storage"}  # fmt: skip
"""Each product folder and the package it is installed as."""


@dataclass(frozen=True)
class Edge:
    """One import statement: `source` imports `target`, at `line` of `path`."""

    source: str
    target: str
    path: str
    line: int


def product_modules() -> dict[str, Path]:
    """Every product module's dotted name and file (a package is its __init__.py)."""
    modules: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if folder == "nas" and parts[0] in FOLDERS:
                continue  # the links nas/search_spaces etc., read under their own folders
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements anywhere in `tree` except the body of an `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement loads, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, node.module] if node.module else package)
    # `from p import x` loads p.x when x is a module, otherwise only p.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph() -> list[Edge]:
    """Every import of one product module by another (a module importing itself excluded)."""
    modules = product_modules()
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _runtime_imports(tree):
            loaded = _targets(node, module, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                base, *members = loaded
                found = [name for name in members if name in modules]
                loaded = found if len(found) == len(members) else [base, *found]
            for target in loaded:
                if target in modules and target != module:
                    rel = str(path.relative_to(ROOT))
                    edges.append(Edge(module, target, rel, node.lineno))
    return edges


def strongly_connected(nodes: list[str], successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative: the graph has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(successors.get(root, [])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, []))))
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
                components.append(sorted(component))
    return components


def shortest_cycle(start: str, members: set[str], successors: dict[str, list[str]]) -> list[str]:
    """A shortest path from `start` back to itself inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in successors.get(node, []):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def describe(component: list[str], edges: list[Edge]) -> str:
    """One cycle of a component, each step with the line that makes it, and its other members."""
    successors: dict[str, list[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge.target)
    members = set(component)
    cycle = shortest_cycle(component[0], members, successors)
    where = {(edge.source, edge.target): f"{edge.path}:{edge.line}" for edge in reversed(edges)}
    steps = [f"  {a} -> {b}   ({where[a, b]})" for a, b in zip(cycle, cycle[1:])]
    others = sorted(members - set(cycle))
    more = [f"  also in this cycle's component: {', '.join(others)}"] if others else []
    return "\n".join([f"cycle among {len(component)} modules:", *steps, *more])


def test_the_graph_sees_the_product_modules_and_their_imports() -> None:
    # Guards the guard: a reader that found no modules or no edges would pass with no cycles.
    modules = product_modules()
    assert {"nas.cli", "nas.search_spaces", "nas.evaluators.latency", "nas.storage.rdb"} <= set(
        modules
    )
    pairs = {(edge.source, edge.target) for edge in import_graph()}
    assert {("nas.cli", "nas.commands"), ("nas.config", "nas.errors")} <= pairs


def test_strongly_connected_finds_a_cycle_and_describe_names_its_lines() -> None:
    edges = [
        Edge("a", "b", "a.py", 1),
        Edge("b", "c", "b.py", 2),
        Edge("c", "a", "c.py", 3),
        Edge("c", "d", "c.py", 4),
        Edge("b", "a", "b.py", 5),
    ]
    successors: dict[str, list[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge.target)
    components = strongly_connected(["a", "b", "c", "d"], successors)
    assert sorted(components) == [["a", "b", "c"], ["d"]]
    text = describe(["a", "b", "c"], edges)
    assert "a -> b   (a.py:1)" in text and "b -> a   (b.py:5)" in text
    assert "also in this cycle's component: c" in text


def test_type_checking_imports_do_not_count_and_function_imports_do() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import hidden\n"
        "else:\n"
        "    import shown_else\n"
        "def f():\n"
        "    import inside\n"
    )
    names = {alias.name for node in _runtime_imports(tree) for alias in node.names}
    assert names == {"TYPE_CHECKING", "shown_else", "inside"}


def test_no_import_cycles_among_product_modules() -> None:
    edges = import_graph()
    successors: dict[str, list[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge.target)
    cycles = [c for c in strongly_connected(sorted(product_modules()), successors) if len(c) > 1]
    assert not cycles, "import cycles (break each by moving what both sides need):\n" + "\n".join(
        describe(component, edges) for component in cycles
    )
