"""`nas finalize`: train the search's picks and the zoo with one long recipe, test split once."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nas.commands._output import console, print_table, storage_option, study_option
from nas.config import DEFAULT_FINAL_EPOCHS, DEFAULT_FINAL_SEEDS, DEFAULT_FINAL_TOP


@click.command("finalize")
@study_option
@storage_option
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=DEFAULT_FINAL_TOP,
    show_default=True,
    help="Searched front members to finalize (each zoo network is challenged first).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=DEFAULT_FINAL_EPOCHS, show_default=True
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=DEFAULT_FINAL_SEEDS,
    show_default=True,
    help="Training seeds per network, the same for every network.",
)
@click.option("--cpus-per-trial", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Runs trained at once [default: CPUs / cpus-per-trial].",
)
@click.option(
    "--data-dir",
    default=None,
    help="Where the study's dataset is on this machine [default: where the search read it].",
)
@click.option(
    "--artifact-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the trained weights go [default: artifacts/ beside a SQLite database].",
)
@click.option("--ray-address", default=None, help="Join this Ray cluster instead of a local Ray.")
def command(**options) -> None:
    """Train the chosen front members and every zoo network under the budget as a user would.

    The same recipe for every network: the search's proxy recipe made --epochs long, on the
    whole training split (no validation split, no subset), --seeds seeds each; the test split
    is scored once per run. Runs are kept in the companion study <study>.final with their
    weights (which `nas export` then uses), and an interrupted finalize resumes when run again.
    """
    import optuna

    from nas.finalize import FinalizeOptions, finalize

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if options["artifact_dir"] is not None:
        options["artifact_dir"] = str(options["artifact_dir"])
    request = FinalizeOptions(**options)
    result = finalize(request, say=console.print)
    if result.interrupted:
        click.echo("stopped; run the same command again to train what is missing", err=True)
        sys.exit(130)
    print_final_training(request.storage, result.study_name)
    console.print(
        f"{result.n_finished} runs trained now, {result.n_already} before, {result.n_failed} "
        f"failed; kept in study {result.final_study_name!r} (see `nas report`)"
    )
    if result.n_failed:
        sys.exit(1)


def print_final_training(storage_url: str, study_name: str) -> None:
    """The finalized networks of a study and the verdict against each zoo network."""
    from nas.reporting.final import final_rows, verdicts
    from nas.select import open_existing_storage, pick_study

    storage = open_existing_storage(storage_url)
    try:
        rows = final_rows(pick_study(storage, study_name))
    finally:
        storage.engine.dispose()
    print_table(
        f"Final training of {study_name} (test accuracy: mean over seeds [95% CI])",
        ["network", "latency ms", "MFLOPs", "test accuracy", "per seed"],
        [
            [
                f"{row.label}{' (zoo)' if row.zoo else ''}",
                f"{row.latency_ms:.2f}",
                f"{row.mflops:.1f}",
                row.text(),
                ", ".join(f"{accuracy:.2%}" for accuracy in row.accuracies),
            ]
            for row in rows
        ],
    )
    for verdict in verdicts(rows):
        console.print(f"{verdict.zoo.label}: {verdict.text()}", highlight=False)
