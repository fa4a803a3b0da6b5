"""The Python examples in README.md and docs/*.md run, so they cannot drift from the code.

Each document is a session, as in doctest: its ```python blocks run in order in one namespace
(a later block may use what an earlier one defined), in a fresh working folder. An example that
reads a file a user would already have (a trained-model folder, a study database) gets a small
one made there first (`PREPARED`). A block preceded by `<!-- docs-test: skip (why) -->` is not
run; one preceded by `<!-- docs-test: gpu -->` runs only where torch sees a GPU.
"""

from __future__ import annotations

import re
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```", re.M | re.S)
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<what>skip|gpu)\b(?P<why>.*?)-->\s*$")


@dataclass(frozen=True)
class Example:
    """One ```python block: its code (dedented), its fence's line (1-based), and its marker."""

    document: Path
    line: int
    code: str
    marker: str | None
    why: str

    def compiled(self):
        # Padded so that a traceback's line numbers are the markdown file's own.
        return compile("\n" * self.line + self.code, str(self.document), "exec")


def examples(document: Path) -> list[Example]:
    text = document.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = MARKER.search(before[-1]) if before else None
        found.append(
            Example(
                document,
                text.count("\n", 0, match.start("code")),
                textwrap.dedent(match.group("code")),
                marker.group("what") if marker else None,
                marker.group("why").strip(" ()") if marker else "",
            )
        )
    return found


def _trained_model_folder(folder: Path) -> None:
    """What `nas train mnasnet0_5 ... --out runs/mnasnet` leaves, with untrained weights."""
    from nas.evaluators.checkpoint import save_checkpoint
    from nas.evaluators.recipe import Recipe
    from nas.search_spaces.builder import build_model
    from nas.search_spaces.zoo import ZOO

    arch, shape, classes = ZOO["mnasnet0_5"](), (3, 32, 32), 10
    metrics = {"input_shape": list(shape), "num_classes": classes,
               "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}  # fmt: skip
    model = build_model(arch, shape, classes)
    save_checkpoint(folder / "runs" / "mnasnet", model, arch, Recipe().to_dict(), metrics)


def _study_database(folder: Path) -> None:
    """A finished search's study in nas.db (the results tests' small study, no training)."""
    from results_studies import make_search_study

    make_search_study(folder / "nas.db")


PREPARED: dict[str, Callable[[Path], None]] = {
    "runs/mnasnet": _trained_model_folder,
    "sqlite:///nas.db": _study_database,
}
"""A path an example reads -> what makes it in the working folder before the document runs."""


def _documents_with_examples() -> list[Path]:
    return [document for document in DOCUMENTS if examples(document)]


@pytest.mark.parametrize(
    "document", _documents_with_examples(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_the_document_s_python_examples_run(
    document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    found = examples(document)
    for needle, prepare in PREPARED.items():
        if any(needle in example.code for example in found if example.marker != "skip"):
            prepare(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    ran = 0
    for example in found:
        if example.marker == "skip":
            assert example.why, f"{document.name}:{example.line}: say why it is skipped"
            continue
        if example.marker == "gpu" and not torch.cuda.is_available():
            continue
        exec(example.compiled(), namespace)
        ran += 1
    if not ran and not torch.cuda.is_available():
        pytest.skip("every example of this document needs a GPU or is marked skip")


def test_the_examples_are_found_with_their_markers_and_lines(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "text\n\n```python\nx = 1\n```\n\n- item:\n\n  ```python\n  y = x + 1\n  ```\n\n"
        "<!-- docs-test: skip (needs a phone) -->\n```python\nraise SystemExit\n```\n"
        "```bash\nnas search\n```\n"
    )
    found = examples(document)
    assert [(e.line, e.code, e.marker, e.why) for e in found] == [
        (3, "x = 1\n", None, ""),
        (9, "y = x + 1\n", None, ""),
        (14, "raise SystemExit\n", "skip", "needs a phone"),
    ]
    failing = Example(document, 9, "y = 1\nz = undefined\n", None, "")
    with pytest.raises(NameError) as error:
        exec(failing.compiled(), {})
    last = traceback.extract_tb(error.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (str(document), 11)  # the markdown file's own line


FILE_SUFFIXES = {"json", "db", "yaml", "yml", "md", "py", "onnx", "pte", "param", "bin", "csv"}


def _resolves(dotted: str) -> bool:
    """Whether `dotted` (nas.module.attribute...) names a module or something in one."""
    import importlib

    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_the_names_and_paths_the_docs_give_exist() -> None:
    # Prose drifts as examples do: `nas.search._recipe` outlived its function by weeks.
    assert _resolves("nas.evaluators.latency") and _resolves("nas.recipes.recipe_for")
    assert not _resolves("nas.recipes.no_such_function") and not _resolves("nas.no_such_module")
    stale = []
    for document in DOCUMENTS:
        text = document.read_text()
        where = document.relative_to(ROOT)
        for name in re.findall(r"`(nas(?:\.\w+)+)(?:\([^`]*\))?`", text):
            if name.rsplit(".", 1)[1] not in FILE_SUFFIXES and not _resolves(name):
                stale.append(f"{where}: `{name}`")
        for path in re.findall(r"`((?:\w[\w.-]*/)+[\w.-]+\.py)(?::\w+)?`", text):
            if not (ROOT / path).exists():
                stale.append(f"{where}: `{path}`")
    assert not stale, "names no longer in the code:\n" + "\n".join(stale)
