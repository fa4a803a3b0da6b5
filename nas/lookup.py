"""The tabular evaluator's Ray side: a candidate's accuracy read from NAS-Bench-Macro, streamed
back exactly as a training worker streams its epochs.

`nas search --evaluator table` runs the real product (pricing, the study, the driver's loop,
stopping rules, confirm, reports) with training swapped for a lookup, so that search strategies
can be compared over hundreds of trials in seconds per trial. A trial's training seed picks one
of the three published runs (`MacroResult.accuracy`), so a lookup is as noisy as one real
training and confirm runs with other seeds see the other runs; ``table-mean`` reads the
three-run mean instead. The published table keeps only each run's final figure, so a lookup
streams one record, at the recipe's last epoch: no stopping rule ever acts on it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import ray

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.datasets import DEFAULT_DATASET, Dataset, load_dataset
from nas.evaluators.nasbench_macro import SPACE, TEST_IMAGES, NasBenchMacro, described_dataset
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, Status, TrialResult
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace, load_space
from nas.worker import EPOCH, RESULT, remote_trainer

CIFAR_INPUT = (3, 32, 32)


def evaluation_data(config: SearchConfig, space: SearchSpace) -> tuple[Dataset, Any]:
    """The dataset the study records, and what the search's tasks read besides a candidate and
    its recipe: the dataset to train on, or, for a lookup, a dataset with no images that says
    what the accuracies were measured on and NAS-Bench-Macro's table."""
    if not config.looks_up:
        data = load_dataset(
            config.dataset,
            config.data_dir,
            seed=config.seed,
            limit_train=config.proxy_setting("limit_train") or None,
            mixed_sizes_at=config.proxy_setting("proxy_resolution") or None,
        )
        return data, data
    return described_dataset(), NasBenchMacro.load()


def check_lookup(config: SearchConfig, space: SearchSpace) -> None:
    """Refuse a search the table cannot answer, in one line, before anything starts."""
    if not config.looks_up:
        return
    flag = f"--evaluator {config.evaluator}"
    reference = load_space(SPACE)
    if (space.stem, space.head, space.stages) != (reference.stem, reference.head, reference.stages):
        raise InputError(
            f"{flag} reads NAS-Bench-Macro's results, which exist for the {SPACE} space only: "
            f"add --space {SPACE}"
        )
    if config.deploy_input != CIFAR_INPUT:
        raise InputError(
            f"{flag}: NAS-Bench-Macro's networks run on 32x32 images: add --input-size 32"
        )
    if config.dataset not in (DEFAULT_DATASET, "cifar10"):
        raise InputError(
            f"{flag} reads CIFAR-10 accuracies, not {config.dataset}'s: leave --dataset out"
        )


def evaluation_task(config: SearchConfig) -> Any:
    """The Ray task a candidate goes to: training, or a lookup shaped like it."""
    if config.looks_up:
        return remote_lookup(mean=config.evaluator == "table-mean")
    return remote_trainer(config.cpus_per_trial, config.gpus_per_trial)


def lookup_candidate(
    arch_string: str, table: NasBenchMacro, recipe: dict[str, Any], mean: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the one epoch record and the result a training of `arch_string` would have."""
    parsed = Recipe.from_dict(recipe)
    found = table.lookup(Arch.from_string(arch_string))
    accuracy = found.accuracy(parsed.seed, mean=mean)
    record = EpochRecord(
        epoch=parsed.epochs,
        val_accuracy=accuracy,
        val_loss=None,
        train_loss=0.0,
        seconds=0.0,
        images_per_second=0.0,
        val_count=TEST_IMAGES,
    )
    where = {"host": socket.gethostname(), "device": {"type": "lookup", "table": found.key}}
    yield {"type": EPOCH, **record.to_dict(), **where}
    result = TrialResult(
        status=Status.OK,
        accuracy=accuracy,
        curve=[record],
        host=where["host"],
        recipe=parsed.to_dict(),
        seed=parsed.seed,
        input_shape=CIFAR_INPUT,
        arch=arch_string,
        best_accuracy=accuracy,
        val_count=TEST_IMAGES,
    )
    yield {"type": RESULT, **result.to_dict(), **where}


def remote_lookup(mean: bool) -> Any:
    """`lookup_candidate` as a Ray task shaped like `nas.worker.remote_trainer`'s."""

    def lookup(
        arch_string: str, table: NasBenchMacro, recipe: dict[str, Any], final: bool = False
    ) -> Iterator:
        if final:  # a final training scores the test split of images, which a table has not
            raise ValueError("a looked-up candidate cannot be finalized")
        yield from lookup_candidate(arch_string, table, recipe, mean=mean)

    return ray.remote(num_cpus=0, max_retries=0, num_returns="streaming")(lookup)
