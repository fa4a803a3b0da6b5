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
import re
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


def readme_map() -> dict[str, set[str]]:
    """The README's map of the code: each top folder and the names listed under it.

    A name is a module file (`cli.py`, `blocks/kind.py`) or a sub-folder (`commands/`), which
    stands for every module in it; the top folder's own line stands for none of them.
    """
    text = (ROOT / "README.md").read_text()
    block = text.split("\n## Map of the code\n", 1)[1].split("\n## ", 1)[0]
    sections: dict[str, set[str]] = {}
    current: set[str] = set()
    for line in block.strip("\n").splitlines():
        if not line.startswith("    "):
            break  # the prose after the map
        if not line.startswith("     "):
            folder, _, line = line.strip().partition(" ")
            current = sections.setdefault(folder, set())
        current.update(re.findall(r"(?<![\w./-])((?:\w+/)*\w+\.py|(?:\w+/)+)(?![\w/])", line))
    return sections


def unmapped_modules(sections: dict[str, set[str]]) -> list[str]:
    """Product modules (under nas/, search_spaces/, evaluators/, storage/) the map omits."""
    missing = []
    for folder in ("nas", *ALLOWED):
        listed = sections.get(f"{folder}/", set())
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).parts
            if folder == "nas" and parts[0] in ALLOWED:
                continue  # the links, mapped under their own folders
            folders = {"/".join(parts[:depth]) + "/" for depth in range(1, len(parts))}
            files = {"/".join(parts[depth:]) for depth in range(len(parts))}
            if parts == ("__init__.py",) or listed & (folders | files):
                continue
            missing.append(str(path.relative_to(ROOT)))
    return missing


def stale_names(sections: dict[str, set[str]]) -> list[str]:
    """Names the map lists under a top folder that no file or folder in it has any more."""
    stale = []
    for section, names in sections.items():
        paths = [
            path.relative_to(ROOT / section).as_posix() for path in (ROOT / section).rglob("*")
        ]
        for name in sorted(names):
            wanted = name.rstrip("/")
            if not any(path == wanted or path.endswith("/" + wanted) for path in paths):
                stale.append(section + name)
    return stale


def test_the_readme_map_of_the_code_names_every_module() -> None:
    # A module the map leaves out is one a newcomer cannot find by reading it: name the file,
    # or the sub-folder it belongs to, with its one job. A name it keeps after the file went
    # sends the newcomer looking for nothing.
    sections = readme_map()
    missing = unmapped_modules(sections)
    assert not missing, "README.md, 'Map of the code', does not name: " + ", ".join(missing)
    stale = stale_names(sections)
    assert not stale, "README.md, 'Map of the code', names what is gone: " + ", ".join(stale)


def test_the_map_reader_sees_files_folders_and_sections() -> None:
    sections = readme_map()
    assert {"nas/", "search_spaces/", "evaluators/", "storage/"} <= set(sections)
    assert {"cli.py", "commands/", "reporting/"} <= sections["nas/"]
    assert {"latency/", "datasets/", "flops.py"} <= sections["evaluators/"]
    assert "nas/" not in sections["nas/"]
    fake = {"nas/": {"cli.py", "commands/"}, "storage/": {"rdb.py"}}
    missing = unmapped_modules(fake)
    assert "nas/cli.py" not in missing and "nas/commands/search.py" not in missing
    assert "nas/config.py" in missing and "storage/urls.py" in missing
    assert "nas/__init__.py" not in missing and "storage/rdb.py" not in missing
    assert stale_names({"nas/": {"cli.py", "reporting/", "gone.py"}}) == ["nas/gone.py"]
