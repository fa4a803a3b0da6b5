"""The training recipe a search gives every candidate, built from the user's configuration."""

from __future__ import annotations

from nas.config import SearchConfig
from nas.evaluators.recipe import Recipe


def recipe_for(config: SearchConfig) -> Recipe:
    """The proxy-training recipe a search with `config` gives every candidate."""
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
