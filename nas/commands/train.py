"""`nas train`: full training of one architecture, evaluated once on the test split.

The flags become a `nas.train.TrainOptions`; `nas.train` does the work, this module prints it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from nas.commands._output import console
from nas.config import DEFAULT_FINAL_EPOCHS
from nas.evaluators.recipe import PRECISIONS

if TYPE_CHECKING:
    from nas.evaluators.results import EpochRecord
    from nas.train import TrainOutcome, TrainPlan


@click.command("train")
@click.argument("arch")
@click.option(
    "--dataset",
    default="fashion-mnist-mini",
    show_default=True,
    help="fashion-mnist-mini (embedded), fashion-mnist, cifar10, cifar100, imagefolder.",
)
@click.option(
    "--data-dir",
    type=click.Path(),
    help="Where the dataset's files are (not needed for the embedded default).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=DEFAULT_FINAL_EPOCHS, show_default=True
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder [default: results/train-<arch name>].",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds the validation split, initialisation, data order and augmentation.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="torch threads [default: the recipe's]."
)
@click.option("--batch-size", type=click.IntRange(min=2), help="[default: the recipe's]")
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="Peak learning rate [default: the recipe's].",
)
@click.option(
    "--limit-train",
    type=click.IntRange(min=1),
    help="Train on at most this many images (stratified subset).",
)
@click.option(
    "--proxy-resolution",
    type=click.IntRange(min=4),
    help="Train at this input side, resizing the images (as `nas search`) [default: their own].",
)
@click.option(
    "--min-final-map",
    type=click.IntRange(min=0),
    help="Stride plan (as `nas search`): free the first stride-2 steps until the last maps "
    "are at least this many pixels a side; 0: the strides as deployed [default: the "
    "dataset's, as `nas search`].",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where to train: auto (a GPU where torch sees one, else the CPU), cpu, cuda, cuda:N.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto: float32 on a CPU; on a GPU bfloat16 where it has it, else float16 with loss "
    "scaling.",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Wall-time limit; the run fails when it is passed [default: none].",
)
def command(arch: str, **flags: Any) -> None:
    """Train ARCH (an arch string, zoo name or JSON file) and evaluate it on the test split.

    The recipe is the search's proxy recipe with more epochs, at the images' own resolution, as
    `nas finalize` trains: the network trained here is the one the search measured, its stride
    plan included. The validation split (seeded) is scored after every epoch; the test split
    once, at the end. Writes model.safetensors, arch.json,
    recipe.json and metrics.json to --out. Exit 1 if training fails (NaN loss, time limit).
    """
    from nas.evaluators.uncertainty import format_accuracy
    from nas.train import TrainOptions, prepare_training

    plan = prepare_training(arch, TrainOptions(**flags))
    recipe = plan.recipe
    console.print(f"[bold]nas train[/bold] {plan.trained_arch.to_string()}")
    console.print(
        f"{plan.data!r}; {recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.lr:g}, "
        f"{recipe.threads} threads, on {plan.device_info.get('name', 'the CPU')} in "
        f"{recipe.precision}"
    )
    outcome = _train_with_progress(plan)
    if not outcome.ok:
        click.echo(f"nas: training failed: {outcome.result.error}", err=True)
        sys.exit(1)
    result = outcome.result
    console.print(
        f"test accuracy [bold]{format_accuracy(outcome.test_accuracy, outcome.test_interval)}"
        f"[/bold] on {outcome.test_count} images (final val "
        f"{format_accuracy(result.accuracy, result.accuracy_interval)} on "
        f"{result.val_count}); {result.train_seconds:.0f} s; saved to {plan.out_dir}/"
    )


def _train_with_progress(plan: TrainPlan) -> TrainOutcome:
    """`run_training` under a progress bar that shows each epoch's accuracy, loss and speed."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nas.train import run_training

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("training", total=plan.recipe.epochs)

        def show(record: EpochRecord) -> None:
            progress.update(
                task,
                advance=1,
                description=(
                    f"val acc {record.val_accuracy:.4f}  loss {record.train_loss:.3f}  "
                    f"{record.images_per_second:.0f} img/s"
                ),
            )

        return run_training(plan, on_epoch=show)
