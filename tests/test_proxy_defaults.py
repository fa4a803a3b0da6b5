"""The proxy a search trains with: per-dataset defaults, and a resume that keeps it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.config import PROXY_DEFAULTS, SearchConfig
from nas.errors import InputError
from nas.evaluators.recipe import Recipe
from nas.recipes import final_recipe, recipe_for, searched_recipe
from nas.storage import open_storage
from nas.study import open_study


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_trains_the_measured_proxy_unless_told(dataset: str) -> None:
    recipe = recipe_for(SearchConfig(budget_mflops=150, dataset=dataset))
    assert (recipe.epochs, recipe.resolution, recipe.min_final_map) == (2, 24, 2)
    told = recipe_for(
        SearchConfig(
            budget_mflops=150, dataset=dataset, epochs=5, proxy_resolution=0, min_final_map=0
        )
    )
    assert (told.epochs, told.resolution, told.min_final_map) == (5, None, 0)


def test_an_image_folder_keeps_its_resolution_and_the_quick_start_trains_short() -> None:
    folder = recipe_for(SearchConfig(budget_mflops=150, dataset="imagefolder"))
    assert (folder.epochs, folder.resolution, folder.min_final_map) == (2, None, 2)
    quick = recipe_for(SearchConfig(budget_mflops=150))
    assert (quick.epochs, quick.resolution, quick.min_final_map) == (2, None, 0)
    # The full Fashion-MNIST, a dataset the user brings, keeps the recipe's own proxy.
    full = recipe_for(SearchConfig(budget_mflops=150, dataset="fashion-mnist", data_dir="."))
    default = Recipe()
    assert "fashion-mnist" not in PROXY_DEFAULTS
    assert (full.epochs, full.resolution, full.min_final_map) == (default.epochs, None, 0)


def test_the_quick_start_confirms_with_two_runs_a_side() -> None:
    assert SearchConfig(budget_mflops=150).seeds_to_confirm == 1
    assert SearchConfig(budget_mflops=150, dataset="cifar10", data_dir=".").seeds_to_confirm == 2


@pytest.mark.parametrize("resolution, ok", [(0, True), (4, True), (3, False), (-1, False)])
def test_proxy_resolution_zero_means_the_data_s_own(resolution: int, ok: bool) -> None:
    if ok:
        SearchConfig(budget_mflops=150, proxy_resolution=resolution)
    else:
        with pytest.raises(InputError, match="--proxy-resolution must be >= 4"):
            SearchConfig(budget_mflops=150, proxy_resolution=resolution)


def _started(tmp_path: Path, recorded: dict) -> str:
    """A study as a search with `recorded` as its recipe leaves it; returns the storage URL."""
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(budget_mflops=60, space="tiny", storage=url, study="s")
    storage = open_storage(url)
    study = open_study(config, storage, recipe_for(config))
    study.set_user_attr("recipe", recorded)
    storage.engine.dispose()
    return url


def test_resume_with_another_proxy_recipe_is_refused_unless_forced(tmp_path: Path) -> None:
    url = _started(tmp_path, Recipe(epochs=4).to_dict())
    storage = open_storage(url)
    try:
        again = dict(budget_mflops=60, space="tiny", storage=url, study="s", resume=True)
        with pytest.raises(InputError, match=r"another proxy recipe \(epochs 4 -> 2\)"):
            open_study(SearchConfig(**again, epochs=2), storage, Recipe(epochs=2))
        open_study(SearchConfig(**again, epochs=4, cpus_per_trial=2), storage, Recipe(threads=2))
        forced = SearchConfig(**again, epochs=2, force=True)
        assert open_study(forced, storage, Recipe(epochs=2)).study_name == "s"
    finally:
        storage.engine.dispose()


def test_a_recipe_recorded_before_a_field_existed_resumes_with_its_default(
    tmp_path: Path,
) -> None:
    old = {
        key: value
        for key, value in Recipe().to_dict().items()
        if key not in ("resolution", "min_final_map")
    }
    url = _started(tmp_path, old)
    storage = open_storage(url)
    try:
        # The proxy that study trained (the recipe's epochs, the images' own side), as flags:
        # the embedded dataset's defaults have changed since, which a resume rightly refuses.
        config = SearchConfig(
            budget_mflops=60,
            space="tiny",
            storage=url,
            study="s",
            resume=True,
            epochs=Recipe().epochs,
            proxy_resolution=0,
        )
        open_study(config, storage, recipe_for(config))
    finally:
        storage.engine.dispose()


def test_the_cli_refuses_a_changed_proxy_on_resume_in_one_line(tmp_path: Path, capsys) -> None:
    url = _started(tmp_path, Recipe(epochs=4).to_dict())
    args = ["search", "--space", "tiny", "--budget-mflops", "60", "--storage", url]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--study", "s", "--resume", "--epochs", "3"])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "epochs 4 -> 3" in err and err.count("\n") == 1


def test_final_training_uses_the_data_s_resolution_and_keeps_the_stride_plan() -> None:
    study = optuna.create_study()
    study.set_user_attr("recipe", Recipe(epochs=2, resolution=24, min_final_map=2).to_dict())
    final = final_recipe(searched_recipe(study), epochs=10, threads=1)
    assert (final.epochs, final.resolution, final.min_final_map) == (10, None, 2)


def test_resume_with_another_training_subset_is_refused_like_another_budget(
    tmp_path: Path, capsys
) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    base = dict(budget_mflops=60, space="tiny", storage=url, study="s", limit_train=400)
    storage = open_storage(url)
    try:
        open_study(SearchConfig(**base), storage)
    finally:
        storage.engine.dispose()
    args = ["search", "--space", "tiny", "--budget-mflops", "60", "--storage", url]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--study", "s", "--resume", "--limit-train", "800"])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "limit_train 400 -> 800" in err and err.count("\n") == 1


def test_a_study_recorded_before_limit_train_was_checked_still_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(budget_mflops=60, space="tiny", storage=url, study="s", limit_train=400)
    storage = open_storage(url)
    try:
        study = open_study(config, storage)
        old = {k: v for k, v in config.identity().items() if k != "limit_train"}
        study.set_user_attr("identity", old)
        resumed = open_study(dataclasses.replace(config, resume=True), storage)
        assert resumed.user_attrs["identity"]["limit_train"] == 400
    finally:
        storage.engine.dispose()
