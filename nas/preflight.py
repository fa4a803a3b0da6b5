"""Checks that run before any work starts, beyond what flags and `SearchConfig` validate.

Commands write their results last, after minutes or hours of training, and a search prices
candidates one by one as Optuna proposes them: an output path that cannot be written, or a
space whose widest corner is out of bounds at the deployment input, would otherwise surface as
a traceback at the very end or in the middle. Here each is one line and exit code 2, before a
dataset is loaded, Ray starts or a trial is written.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.latency import LatencyTable
from nas.evaluators.recipe import Recipe
from nas.files import unwritable_dir, unwritable_file
from nas.search_spaces.footprint import check_arch_fits
from nas.search_spaces.space import SearchSpace


def require_writable_dir(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Folder `path` can be created and written, or an `InputError` naming `flag`."""
    problem = unwritable_dir(path)
    if problem:
        raise InputError(f"{flag} {path} {_phrase(problem)}; choose another folder")
    return Path(path)


def require_writable_file(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """File `path` can be written, or an `InputError` naming `flag`."""
    problem = unwritable_file(path)
    if problem:
        raise InputError(f"{flag} {path} {_phrase(problem)}; choose another path")
    return Path(path)


def _phrase(problem: str) -> str:
    """'is a file, not a folder' reads on after the path; a reason about another path after ':'."""
    return problem if problem.startswith("is ") else f"cannot be written: {problem}"


def check_search_inputs(config: SearchConfig, space: SearchSpace) -> None:
    """The output folder is writable, and every architecture of `space` fits the limits.

    The folder is the one the search writes at the end (``--out``, else ``results/<study>``);
    the space is checked at its dearest corner, which has the most channels, blocks,
    parameters and activations of all its architectures.
    """
    require_writable_dir(config.out or Path("results") / config.study_name)
    try:
        check_arch_fits(space.dearest(), config.deploy_input, config.deploy_classes)
    except InputError as error:
        raise InputError(
            f"search space {space.name!r} at its widest and deepest: {error}"
        ) from None


def check_table_prices(space: SearchSpace, config: SearchConfig, table: LatencyTable) -> None:
    """The table prices the space's cheapest and dearest networks at a time a network can take.

    A table whose entries are all zero ranks every candidate alike, and cost-model
    coefficients edited or damaged into huge numbers price a candidate at ``inf ms``: either
    would run a whole search against a latency that means nothing.
    """
    for which, arch in (("cheapest", space.cheapest()), ("dearest", space.dearest())):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            ms = table.predict(arch, config.deploy_input, config.deploy_classes).total_ms
        if not (math.isfinite(ms) and ms > 0):
            raise InputError(
                f"latency table {table.target!r} ({table.path}) prices the {which} network of "
                f"space {space.name!r} at {ms:g} ms, which no network takes: its entries or "
                f"cost model are damaged; rebuild it with 'nas lut build' or restore the file"
            )


def check_stride_plan(recipe: Recipe, input_shape: tuple[int, int, int]) -> None:
    """``--min-final-map`` asks for final maps no larger than the proxy input.

    A larger one no stride plan reaches: every stride would turn to 1 and every candidate
    train at full resolution in every stage, the dearest proxy there is, for a map that is
    still smaller than asked.
    """
    _, height, width = recipe.proxy_input(input_shape)
    side = min(height, width)
    if recipe.min_final_map > side:
        raise InputError(
            f"--min-final-map {recipe.min_final_map:,} is larger than the proxy input "
            f"({height}x{width}): no stride plan reaches it; choose at most {side} (0: off)"
        )
