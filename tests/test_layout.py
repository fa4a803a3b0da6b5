"""The code's layout: import paths match folders, and dependencies point one way.

The rule (README, "Map of the code"): `nas.search_spaces` depends on nothing else of `nas`;
`nas.evaluators` on `nas.search_spaces`; `nas.storage` on nothing. The shared base all three
may import is `nas.errors` (what a user got wrong) and `nas.files` (writing a file in one
step). Outside the latency subsystem, code uses only what the package `nas.evaluators.latency`
itself exports, never its modules.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_BASE = {"nas.errors", "nas.files"}
ALLOWED = {
    "search_spaces": {"nas.search_spaces"},
    "evaluators": {"nas.evaluators", "nas.search_spaces"},
    "storage": {"nas.storage"},
}
LATENCY = "nas.evaluators.latency"


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved in `package`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path, folder: str) -> str:
    """The package a module file belongs to (for a package's __init__.py, that package)."""
    parts = path.relative_to(ROOT / folder).parts[:-1]
    return ".".join(["nas", *parts] if folder == "nas" else ["nas", folder, *parts])


def within(name: str, prefixes: set[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_subpackages_import_nothing_of_nas_outside_their_dependencies(folder: str) -> None:
    allowed = ALLOWED[folder] | SHARED_BASE
    offences = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imported_modules(path, package_of(path, folder)):
            if within(name, {"nas"}) and name != "nas" and not within(name, allowed):
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, "\n".join(offences)


def test_the_shared_base_imports_nothing_of_nas() -> None:
    for module in SHARED_BASE:
        path = ROOT / (module.replace(".", "/") + ".py")
        assert not [name for name in imported_modules(path, "nas") if within(name, {"nas"})]


def test_only_the_latency_package_reaches_into_its_own_modules() -> None:
    offences = []
    for folder in ("nas", "evaluators", "search_spaces", "storage"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve().is_relative_to(ROOT / "evaluators" / "latency"):
                continue
            if folder == "nas" and path.relative_to(ROOT / "nas").parts[0] in ALLOWED:
                continue  # the links to the three folders, scanned under their own names
            for name in imported_modules(path, package_of(path, folder)):
                if name.startswith(LATENCY + ".") and name.count(".") == LATENCY.count(".") + 1:
                    module = name.rsplit(".", 1)[1]
                    if (ROOT / "evaluators" / "latency" / f"{module}.py").is_file():
                        offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, "\n".join(offences)


def test_the_import_path_and_the_folder_agree() -> None:
    # nas/search_spaces is the top-level search_spaces/ folder, and so on: `nas.storage.rdb`
    # is the file nas/storage/rdb.py for grep, editors and type checkers alike.
    for folder in ALLOWED:
        link = ROOT / "nas" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve(), link
        assert os.readlink(link) == f"../{folder}"


def test_nas_is_only_its_own_folder_inside_a_checkout() -> None:
    # Inside a checkout, with its root first on sys.path as Ray's workers have it, `nas` must
    # not reach the other top-level folders (tests, benchmarks, docker).
    probe = (
        "import importlib, json, nas\n"
        "found = []\n"
        "for name in ('tests', 'benchmarks', 'docker', 'scripts'):\n"
        "    try:\n"
        "        importlib.import_module('nas.' + name)\n"
        "        found.append(name)\n"
        "    except ModuleNotFoundError:\n"
        "        pass\n"
        "import nas.evaluators.latency.table as table\n"
        "print(json.dumps({'path': list(nas.__path__), 'found': found, 'table': table.__file__}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(run.stdout)
    assert [Path(p).resolve() for p in result["path"]] == [ROOT / "nas"]
    assert result["found"] == []
    assert Path(result["table"]).resolve() == ROOT / "evaluators" / "latency" / "table.py"
