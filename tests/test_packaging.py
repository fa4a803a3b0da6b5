"""The distribution ships every package of the tree (the list in pyproject.toml is explicit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_declared() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(setuptools["packages"])
    mapping = setuptools["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == declared


@pytest.mark.slow
def test_an_installed_copy_searches_from_inside_its_checkout(tmp_path: Path) -> None:
    """`pip install .` in a clone, then `nas search` there: the README's first command.

    Ray puts the driver's working directory first on its workers' sys.path, so inside a clone
    the workers import `nas` from the tree, which reaches its subpackages through the links in
    nas/ (copied as links here, as git checks them out). The editable install the tests run
    under hides that; this installs a plain copy into an environment that sees the test
    environment's packages but not its editable hook.
    """
    checkout = tmp_path / "checkout"
    for name in (
        "nas",
        *tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "package-dir"
        ].values(),
    ):
        if not (checkout / name).exists():
            shutil.copytree(
                ROOT / name,
                checkout / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    site = next((env_dir / "lib").glob("python*/site-packages"))
    # A path listed in a .pth file is added without running the .pth files inside it, so the
    # editable install's import hook stays out.
    (site / "test-environment.pth").write_text(
        "\n".join(path for path in sys.path if path.endswith("site-packages")) + "\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(checkout),
        ],
        check=True,
        capture_output=True,
    )
    located = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import nas.evaluators; print(nas.evaluators.__file__)",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert Path(located.stdout.strip()).is_relative_to(site)

    db = tmp_path / "nas.db"
    run = subprocess.run(
        [
            str(env_dir / "bin" / "nas"),
            "search",
            "--space",
            "tiny",
            "--target",
            "armv8",
            "--budget-mflops",
            "60",
            "--limit-train",
            "400",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--workers",
            "2",
            "--trials",
            "2",
            "--no-warm-start",
            "--storage",
            f"sqlite:///{db}",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 2 and not [t for t in study.trials if t.state == TrialState.FAIL]
    # The front closes the output, each arch string on one unbroken line.
    front = json.loads((tmp_path / "out" / "pareto.json").read_text())["pareto"]
    assert front and all(
        f"trial {row['number']}: {row['arch']}\n" in run.stdout for row in front
    ), run.stdout
