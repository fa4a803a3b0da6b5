"""Full training of one architecture, as a user would deploy it, with the test split scored once.

`nas train` is this module behind flags. The recipe is the search's proxy recipe made long, at
the images' own resolution, as `nas finalize` trains (`nas.recipes.train_recipe`): the network
trained here is the one the search measured, its stride plan included. The validation split
(seeded) is scored after every epoch; the test split once, at the end.

The work comes in two steps so that every check runs before any training: `prepare_training`
refuses bad input (`InputError`) before a dataset is loaded or a folder is made where it can,
and `run_training` trains, scores the test split and writes the checkpoint. `train_arch` does
both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.config import DEFAULT_FINAL_EPOCHS
from nas.evaluators.checkpoint import save_checkpoint
from nas.evaluators.datasets import Dataset, load_dataset
from nas.evaluators.device import describe_device, resolve_device, resolve_precision
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, TrialResult
from nas.evaluators.training import build_proxy_model, evaluate, iter_training, proxy_data
from nas.evaluators.uncertainty import correct_of, wilson_interval
from nas.preflight import require_writable_dir
from nas.recipes import train_recipe
from nas.search_spaces.arch import Arch
from nas.search_spaces.limits import check_input_size
from nas.search_spaces.resolve import resolve_arch


@dataclass(frozen=True)
class TrainOptions:
    """What `nas train` is asked to do; None: the recipe's (or the dataset's) default.

    The field names are the command's flags, so the command passes its flags straight in.
    """

    dataset: str = "fashion-mnist-mini"
    data_dir: str | None = None
    epochs: int = DEFAULT_FINAL_EPOCHS
    out: str | None = None
    """Output folder; None: results/train-<arch name>."""
    seed: int = 0
    threads: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    limit_train: int | None = None
    proxy_resolution: int | None = None
    min_final_map: int | None = None
    max_seconds: float | None = None
    device: str = "auto"
    precision: str = "auto"


@dataclass(frozen=True)
class TrainPlan:
    """A run worked out, every input checked, before it trains."""

    arch: Arch
    """As requested (deployment strides)."""
    trained_arch: Arch
    """As trained: the recipe's stride plan applied at the data's input."""
    data: Dataset
    recipe: Recipe
    model: nn.Module
    device: torch.device
    device_info: dict[str, Any]
    out_dir: Path


@dataclass(frozen=True)
class TrainOutcome:
    """A finished run: its training result and, when it trained, the test split's score.

    A failed run (NaN loss, time limit) has `result.error` and no test score or checkpoint.
    """

    plan: TrainPlan
    result: TrialResult
    test_accuracy: float | None = None
    test_loss: float | None = None
    test_count: int = 0
    test_interval: tuple[float, float] | None = None
    metrics: dict[str, Any] | None = None
    """What metrics.json holds; None for a failed run."""

    @property
    def ok(self) -> bool:
        return self.result.ok


def train_arch(
    arch: str, options: TrainOptions, on_epoch: Callable[[EpochRecord], None] | None = None
) -> TrainOutcome:
    """Train `arch` (an arch string, zoo name or JSON file) as `options` say, score the test
    split and write the checkpoint; `on_epoch` sees each epoch's record as it finishes."""
    return run_training(prepare_training(arch, options), on_epoch)


def prepare_training(arch: str, options: TrainOptions) -> TrainPlan:
    """Check every input, load the data and build the model; `InputError` on bad input.

    The order is the cheap checks first: a GPU that is not there, an architecture or input
    over the limits, or an unwritable output folder is refused before the dataset loads.
    """
    where = resolve_device(options.device)
    resolved = resolve_arch(arch)
    if options.proxy_resolution is not None:
        check_input_size(options.proxy_resolution, "--proxy-resolution")
    out_dir = require_writable_dir(
        Path(options.out) if options.out else Path("results") / f"train-{_slug(arch)}"
    )
    data = load_dataset(
        options.dataset,
        options.data_dir,
        seed=options.seed,
        limit_train=options.limit_train,
        mixed_sizes_at=options.proxy_resolution,
    )
    recipe = train_recipe(
        options.dataset,
        options.epochs,
        seed=options.seed,
        threads=options.threads,
        batch_size=options.batch_size,
        lr=options.lr,
        max_seconds=options.max_seconds,
        precision=resolve_precision(options.precision, where),
        resolution=options.proxy_resolution,
        min_final_map=options.min_final_map,
    )
    return TrainPlan(
        arch=resolved,
        trained_arch=recipe.proxy_arch(resolved, data.input_shape),
        data=data,
        recipe=recipe,
        model=build_proxy_model(resolved, data, recipe),
        device=where,
        device_info=describe_device(where),
        out_dir=out_dir,
    )


def run_training(
    plan: TrainPlan, on_epoch: Callable[[EpochRecord], None] | None = None
) -> TrainOutcome:
    """Train `plan`'s model in place; if it trained, score the test split once and write the
    checkpoint (weights, arch, recipe, metrics) to its folder."""
    recipe = plan.recipe
    run = iter_training(plan.arch, plan.data, recipe, model=plan.model, device=plan.device)
    while True:
        try:
            record = next(run)
        except StopIteration as finished:
            result: TrialResult = finished.value
            break
        if on_epoch is not None:
            on_epoch(record)
    if not result.ok:
        return TrainOutcome(plan, result)
    data = proxy_data(plan.data, recipe)  # the test split at the resolution the model trained at
    test_accuracy, test_loss = evaluate(
        plan.model,
        data.test_images,
        data.test_labels,
        data,
        recipe.eval_batch_size,
        recipe.channels_last,
        device=plan.device,
        precision=recipe.precision,
    )
    count = len(data.test_labels)
    interval = wilson_interval(correct_of(test_accuracy, count), count)
    metrics = {
        **result.to_dict(),
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "val_interval": list(result.accuracy_interval or ()),
        "test_interval": list(interval),
        "arch_requested": plan.arch.to_string(),
        **_data_metrics(data),
        "device": plan.device_info,
    }
    save_checkpoint(plan.out_dir, plan.model, plan.trained_arch, recipe.to_dict(), metrics)
    return TrainOutcome(plan, result, test_accuracy, test_loss, count, interval, metrics)


def _data_metrics(data: Dataset) -> dict[str, Any]:
    """What metrics.json says of the data: enough to rebuild the input pipeline."""
    return {
        "dataset": data.name,
        "provenance": data.provenance,
        "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "mean": list(data.mean),
        "std": list(data.std),
        "train_images": len(data.train_labels),
        "val_images": len(data.val_labels),
        "test_images": len(data.test_labels),
    }


def _slug(text: str) -> str:
    """A folder-safe name: the zoo name or file stem if given, else a prefix of the string."""
    name = Path(text).stem if text.endswith(".json") else text
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:48].strip("-") or "arch"
