"""Every training recipe the product builds, from one chain of functions, so none can drift.

- the search's proxy (`recipe_for`): what every candidate trains with. Confirm trains the front
  again with this very recipe, only the seed changed per run (`nas.confirm.confirm_seed`);
- the final training (`final_recipe`): the search's recipe, as recorded on its study, made long,
  at the data's own resolution and with no time limit; `nas finalize` and `--finalize` use it;
- `nas train` (`train_recipe`): the final recipe of a search on the dataset with every search
  flag at its default, then the user's own flags.

The per-dataset defaults (`nas.config.PROXY_DEFAULTS`) reach all of them through one door,
`SearchConfig.proxy_setting`: the final and `nas train` recipes keep the stride plan the
search chose for the dataset, because it is the geometry the network was measured with.
"""

from __future__ import annotations

import dataclasses

import optuna

from nas.config import SearchConfig
from nas.evaluators.nasbench_macro import PUBLISHED_RECIPE
from nas.evaluators.recipe import Recipe
from nas.study_attrs import StudyAttrs


def recipe_for(config: SearchConfig) -> Recipe:
    """The proxy-training recipe a search with `config` gives every candidate; for a lookup
    (`--evaluator table`), the recipe the looked-up accuracies were trained with."""
    if config.looks_up:
        return Recipe(seed=config.seed, threads=config.cpus_per_trial, **PUBLISHED_RECIPE)
    overrides = {
        "epochs": config.proxy_setting("epochs"),
        "batch_size": config.batch_size,
        "lr": config.lr,
        "max_seconds": config.trial_timeout_s,
    }
    precision = config.precision or ("auto" if config.gpus_per_trial > 0 else "float32")
    return Recipe(
        seed=config.seed,
        threads=config.cpus_per_trial,
        precision=precision,
        resolution=config.proxy_setting("proxy_resolution") or None,
        min_final_map=config.proxy_setting("min_final_map", 0),
        **{key: value for key, value in overrides.items() if value is not None},
    )


def searched_recipe(study: optuna.Study) -> Recipe:
    """The proxy recipe `study` was searched with, as recorded on it.

    The recorded one, not `recipe_for` of the recorded configuration: a study made by an
    earlier version keeps the defaults of its day. Fields added since take today's defaults; a
    study that records no recipe trained with today's.
    """
    recorded = StudyAttrs.of(study).recipe
    return Recipe.from_dict(recorded) if recorded else Recipe()


def final_recipe(searched: Recipe, epochs: int, threads: int) -> Recipe:
    """The searched proxy recipe `epochs` long, at the data's own resolution, with no
    wall-time limit (seed set per run).

    A smaller training resolution only makes the proxy cheaper; the final run measures the
    network as a user would train it on these images. The stride plan stays: it is the
    geometry the network was searched with on images this small.
    """
    return dataclasses.replace(
        searched, epochs=epochs, threads=threads, max_seconds=None, seed=0, resolution=None
    )


def train_recipe(
    dataset: str,
    epochs: int,
    *,
    seed: int = 0,
    threads: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    max_seconds: float | None = None,
    precision: str | None = None,
    resolution: int | None = None,
    min_final_map: int | None = None,
) -> Recipe:
    """`nas train`'s recipe: the final recipe of a default search on `dataset`, with the
    user's flags on top (None: not given).

    Its threads default to the recipe's own (a lone run has the machine), not to the search's
    one CPU per trial; `min_final_map` given replaces the dataset's stride plan.
    """
    searched = recipe_for(SearchConfig(dataset=dataset, min_final_map=min_final_map))
    final = final_recipe(searched, epochs, threads or Recipe.threads)
    return final.replace(
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        max_seconds=max_seconds,
        precision=precision,
        resolution=resolution,
    )
