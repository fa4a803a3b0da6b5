"""`nas train`: full training of one architecture, evaluated once on the test split."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from nas.commands._output import console
from nas.evaluators.recipe import PRECISIONS


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
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
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
def command(
    arch: str,
    dataset: str,
    data_dir: str | None,
    epochs: int,
    out: str | None,
    seed: int,
    threads: int | None,
    batch_size: int | None,
    lr: float | None,
    limit_train: int | None,
    proxy_resolution: int | None,
    min_final_map: int | None,
    max_seconds: float | None,
    device: str,
    precision: str,
) -> None:
    """Train ARCH (an arch string, zoo name or JSON file) and evaluate it on the test split.

    The recipe is the search's proxy recipe with more epochs, at the images' own resolution, as
    `nas finalize` trains: the network trained here is the one the search measured, its stride
    plan included. The validation split (seeded) is scored after every epoch; the test split
    once, at the end. Writes model.safetensors, arch.json,
    recipe.json and metrics.json to --out. Exit 1 if training fails (NaN loss, time limit).
    """
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nas.config import proxy_default
    from nas.evaluators.checkpoint import save_checkpoint
    from nas.evaluators.datasets import load_dataset
    from nas.evaluators.device import describe_device, resolve_device, resolve_precision
    from nas.evaluators.training import (
        Recipe,
        build_proxy_model,
        evaluate,
        iter_training,
        proxy_data,
    )
    from nas.evaluators.uncertainty import correct_of, format_accuracy, wilson_interval
    from nas.preflight import require_writable_dir
    from nas.search_spaces.limits import check_input_size
    from nas.search_spaces.resolve import resolve_arch

    where = resolve_device(device)  # a GPU that is not there: one line, exit 2, before any work
    resolved = resolve_arch(arch)
    if proxy_resolution is not None:
        check_input_size(proxy_resolution, "--proxy-resolution")
    out_dir = require_writable_dir(Path(out) if out else Path("results") / f"train-{_slug(arch)}")
    data = load_dataset(dataset, data_dir, seed=seed, limit_train=limit_train)
    recipe = Recipe(max_seconds=None).replace(
        epochs=epochs,
        seed=seed,
        threads=threads,
        batch_size=batch_size,
        lr=lr,
        max_seconds=max_seconds,
        precision=resolve_precision(precision, where),
        resolution=proxy_resolution,
        min_final_map=(
            min_final_map
            if min_final_map is not None
            else proxy_default(dataset, "min_final_map", 0)
        ),
    )
    trained_arch = recipe.proxy_arch(resolved, data.input_shape)
    model = build_proxy_model(resolved, data, recipe)
    console.print(f"[bold]nas train[/bold] {trained_arch.to_string()}")
    device_info = describe_device(where)
    console.print(
        f"{data!r}; {recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.lr:g}, "
        f"{recipe.threads} threads, on {device_info.get('name', 'the CPU')} in {recipe.precision}"
    )

    run = iter_training(resolved, data, recipe, model=model, device=where)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("training", total=recipe.epochs)
        try:
            while True:
                record = next(run)
                progress.update(
                    task,
                    advance=1,
                    description=(
                        f"val acc {record.val_accuracy:.4f}  loss {record.train_loss:.3f}  "
                        f"{record.images_per_second:.0f} img/s"
                    ),
                )
        except StopIteration as finished:
            result = finished.value
    if not result.ok:
        click.echo(f"nas: training failed: {result.error}", err=True)
        sys.exit(1)

    data = proxy_data(data, recipe)  # the test split at the resolution the model trained at
    test_accuracy, test_loss = evaluate(
        model,
        data.test_images,
        data.test_labels,
        data,
        recipe.eval_batch_size,
        recipe.channels_last,
        device=where,
        precision=recipe.precision,
    )
    test_count = len(data.test_labels)
    test_interval = wilson_interval(correct_of(test_accuracy, test_count), test_count)
    metrics = {
        **result.to_dict(),
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "val_interval": list(result.accuracy_interval or ()),
        "test_interval": list(test_interval),
        "arch_requested": resolved.to_string(),
        "dataset": data.name,
        "provenance": data.provenance,
        "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "mean": list(data.mean),
        "std": list(data.std),
        "train_images": len(data.train_labels),
        "val_images": len(data.val_labels),
        "test_images": len(data.test_labels),
        "device": device_info,
    }
    save_checkpoint(out_dir, model, trained_arch, recipe.to_dict(), metrics)
    console.print(
        f"test accuracy [bold]{format_accuracy(test_accuracy, test_interval)}[/bold] "
        f"on {test_count} images (final val "
        f"{format_accuracy(result.accuracy, result.accuracy_interval)} on "
        f"{result.val_count}); {result.train_seconds:.0f} s; saved to {out_dir}/"
    )


def _slug(text: str) -> str:
    """A folder-safe name: the zoo name or file stem if given, else a prefix of the string."""
    name = Path(text).stem if text.endswith(".json") else text
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:48].strip("-") or "arch"
