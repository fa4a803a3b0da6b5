"""The four recipes (search, confirm, finalize, `nas train`) come from one builder and stay put.

Every recorded recipe is part of a trial's identity: a resume, a finalize rerun and a comparison
across studies refuse or mislead if the same inputs give another recipe. The expected recipes
are written out field by field, so a changed default shows here before it reaches a study.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from nas.config import PROXY_DEFAULTS, SearchConfig
from nas.confirm import confirm_seed
from nas.evaluators.recipe import Recipe
from nas.recipes import final_recipe, recipe_for, searched_recipe, train_recipe

RECIPE_DEFAULTS: dict[str, Any] = {
    "epochs": 4,
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-5,
    "label_smoothing": 0.1,
    "schedule": "onecycle",
    "warmup_epochs": 1.0,
    "seed": 0,
    "threads": 2,
    "max_seconds": 1800.0,
    "eval_batch_size": 500,
    "augment": True,
    "crop_padding": None,
    "flip": True,
    "stem_stride1_below": 0,
    "resolution": None,
    "min_final_map": 0,
    "channels_last": True,
    "bn_momentum": 0.1,
    "precision": "float32",
}
"""`Recipe()` as every study so far recorded it."""

CONFIG = SearchConfig(budget_mflops=150, dataset="cifar10", seed=3, cpus_per_trial=3)


def test_the_four_recipes_of_one_cifar10_search_are_pinned() -> None:
    search = recipe_for(CONFIG)
    study = optuna.create_study()
    study.set_user_attr("recipe", search.to_dict())  # as the search records it
    confirm = search.replace(seed=confirm_seed(CONFIG.seed, 1))  # as a confirm run records it
    final = final_recipe(searched_recipe(study), epochs=10, threads=1)
    train = train_recipe("cifar10", 10, precision="float32")

    proxy = {**RECIPE_DEFAULTS, "epochs": 2, "resolution": 24, "min_final_map": 2, "threads": 3}
    assert search.to_dict() == {**proxy, "seed": 3}
    assert confirm.to_dict() == {**proxy, "seed": 4}
    long = {**proxy, "epochs": 10, "resolution": None, "max_seconds": None, "seed": 0}
    assert final.to_dict() == {**long, "threads": 1}
    assert train.to_dict() == {**long, "threads": 2}


def test_recipe_defaults_are_those_recorded_studies_assume() -> None:
    assert Recipe().to_dict() == RECIPE_DEFAULTS


@pytest.mark.parametrize("dataset", ["fashion-mnist-mini", *PROXY_DEFAULTS])
def test_nas_train_trains_the_geometry_finalize_trains_for_a_default_search(dataset: str) -> None:
    searched = recipe_for(SearchConfig(budget_mflops=150, dataset=dataset))
    final = final_recipe(searched, epochs=30, threads=2)
    assert train_recipe(dataset, 30, precision=searched.precision) == final


def _train_recipe_before_the_builder(dataset: str, **flags: Any) -> Recipe:
    """The recipe `nas train` built on its own before it shared the builder."""
    min_final_map = flags.pop("min_final_map", None)
    return Recipe(max_seconds=None).replace(
        **flags,
        min_final_map=(
            min_final_map
            if min_final_map is not None
            else PROXY_DEFAULTS.get(dataset, {}).get("min_final_map", 0)
        ),
    )


@pytest.mark.parametrize(
    "dataset, flags",
    [
        ("fashion-mnist-mini", {"epochs": 30, "seed": 0, "precision": "float32"}),
        ("cifar10", {"epochs": 30, "seed": 0, "precision": "float32"}),
        ("cifar100", {"epochs": 5, "seed": 7, "threads": 4, "precision": "bfloat16"}),
        (
            "imagefolder",
            {"epochs": 2, "seed": 1, "batch_size": 64, "lr": 0.05, "max_seconds": 60.0},
        ),
        ("cifar10", {"epochs": 1, "seed": 0, "resolution": 16, "min_final_map": 0}),
        ("fashion-mnist", {"epochs": 3, "seed": 2, "resolution": 16, "min_final_map": 8}),
    ],
)
def test_nas_train_s_recipe_is_the_one_it_built_before(dataset: str, flags: dict) -> None:
    expected = _train_recipe_before_the_builder(dataset, **flags)
    epochs = flags.pop("epochs")
    assert train_recipe(dataset, epochs, **flags) == expected


def test_a_study_that_recorded_no_recipe_or_an_older_one_gets_today_s_defaults() -> None:
    study = optuna.create_study()
    assert searched_recipe(study) == Recipe()
    older = {k: v for k, v in RECIPE_DEFAULTS.items() if k not in ("resolution", "min_final_map")}
    study.set_user_attr("recipe", {**older, "epochs": 6})
    assert searched_recipe(study) == Recipe(epochs=6)
