"""`nas search`: the user's command, a thin layer over `nas.search.search`."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import click

from nas.commands._output import console, print_table
from nas.config import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_SAMPLER,
    OTHER_CONFIRM_SEEDS,
    PROXY_DEFAULTS,
    SETTING_TYPES,
    SearchConfig,
    build_config,
    read_config_file,
)
from nas.errors import SearchFailed
from nas.evaluators.datasets import DATASET_NAMES, DEFAULT_DATASET
from nas.evaluators.recipe import Recipe
from nas.storage import StorageUnavailable

if TYPE_CHECKING:
    from nas.search import SearchResult

_DEFAULTS = {f.name: f.default for f in fields(SearchConfig)}


def per_dataset(values: Mapping[str, Any], otherwise: Any) -> str:
    """A per-dataset default as help text, "2 for cifar10, cifar100, else 4", written from the
    table that holds it, so that the help cannot drift from what a search does."""
    datasets: dict[Any, list[str]] = {}
    for dataset, value in values.items():
        datasets.setdefault(value, []).append(dataset)
    named = "; ".join(f"{value} for {', '.join(names)}" for value, names in datasets.items())
    return f"{named}, else {otherwise}" if named else str(otherwise)


def proxy_defaults(name: str, otherwise: Any) -> str:
    """The datasets' defaults of the proxy setting `name` (`PROXY_DEFAULTS`) as help text."""
    values = {dataset: given[name] for dataset, given in PROXY_DEFAULTS.items() if name in given}
    return per_dataset(values, otherwise)


def _opt(*names: str, help: str, **kwargs: Any):
    """An option whose absence means "not given" (None), so a config file can set it.

    Its type is the setting's (`SETTING_TYPES`), the one a config file's value gets too.
    """
    key = names[0].lstrip("-").split("/")[0].replace("-", "_")
    default = _DEFAULTS.get(key)
    if default is not None and default is not False and "default:" not in help:
        help = f"{help} [default: {default}]"
    if "/" not in names[0] and not kwargs.get("is_flag"):
        kwargs["type"] = SETTING_TYPES[key]
    return click.option(*names, default=None, help=help, **kwargs)


@click.command("search")
@_opt(
    "--budget-mflops", help="Budget in MFLOPs (millions of multiply-adds) at the deployment input."
)
@_opt("--budget-params", help="Budget in parameters.")
@_opt("--budget-ms", help="Budget in milliseconds on the target.")
@_opt("--target", help="Latency target: a table name (see `nas lut list`) or a table file.")
@_opt("--space", help="Search space: a built-in name (see `nas space list`) or a YAML file.")
@_opt(
    "--dataset",
    help=", ".join(
        f"{name} (embedded)" if name == DEFAULT_DATASET else name for name in DATASET_NAMES
    )
    + ".",
)
@_opt("--data-dir", help="Where the dataset's files are (not needed for the embedded default).")
@_opt(
    "--limit-train",
    help="Train on at most this many images (stratified subset); 0: all "
    f"[default: {proxy_defaults('limit_train', 'all')}].",
)
@_opt(
    "--trials",
    help="How many searched candidates to train (over-budget ones and the "
    "zoo baselines do not count).",
)
@_opt(
    "--epochs",
    help="Proxy training epochs per candidate [default: "
    f"{proxy_defaults('epochs', Recipe().epochs)}].",
)
@_opt("--batch-size", help="Proxy training batch size [default: the recipe's].")
@_opt("--lr", help="Peak learning rate [default: the recipe's].")
@_opt(
    "--early-stopping/--no-early-stopping",
    help="Stop hopeless candidates early, by the rule --scheduler names. [default: on]",
)
@_opt(
    "--scheduler",
    help="Early stopping: median (below the median of finished candidates at least as fast), "
    "asha (successive halving at epochs E/eta, E/eta^2, ..., keeping the best 1/eta on "
    "accuracy and latency together) or surrogate (once a model of every curve so far is 95% "
    "sure the final accuracy stays under the finished candidates at least as fast).",
)
@_opt("--reduction-factor", help="eta of --scheduler asha.")
@_opt(
    "--proxy-resolution",
    help="Train candidates at this input side, resizing the images; 0: their own [default: "
    f"{proxy_defaults('proxy_resolution', 'their own')}].",
)
@_opt(
    "--min-final-map",
    help="Stride plan: make the first stride-2 steps stride 1 until the last stage's maps "
    "are at least this many pixels a side when training (cost stays priced as deployed; "
    f"0: off) [default: {proxy_defaults('min_final_map', Recipe().min_final_map)}].",
)
@_opt(
    "--workers",
    help="Candidates trained at once [default: CPUs / cpus-per-trial, and with "
    "--gpus-per-trial at most GPUs / gpus-per-trial, node by node].",
)
@_opt("--cpus-per-trial", help="CPUs (torch threads) per candidate.")
@_opt(
    "--gpus-per-trial",
    help="GPUs per candidate: each trains on the GPU Ray gives it; a fraction such as 0.25 "
    "packs four candidates on one GPU. 0: train on CPUs.",
)
@_opt(
    "--precision",
    help="Training precision: auto (mixed on GPUs: bfloat16 where the GPU has it, else "
    "float16 with loss scaling; float32 on CPUs), float32, bfloat16, float16 [default: auto "
    "with --gpus-per-trial, else float32].",
)
@_opt(
    "--ray-address",
    help="Join this Ray cluster (e.g. 10.0.0.5:6379) [default: the one RAY_ADDRESS names, "
    "as in `ray job submit`; else a private Ray on this machine].",
)
@_opt(
    "--storage",
    help="SQLAlchemy URL of the study database (sqlite:///..., postgresql+psycopg://...).",
)
@_opt(
    "--artifact-dir",
    help="Where trained weights and exported models are stored "
    "[default: artifacts/ beside a SQLite database, ./artifacts otherwise].",
)
@_opt("--study", help="Study name [default: derived from space, target, budget and dataset].")
@_opt("--resume", is_flag=True, help="Continue the study, re-running trials left unfinished.")
@_opt("--force", is_flag=True, help="With --resume: allow another budget, target or space.")
@_opt(
    "--sampler",
    help="How candidates are proposed: surrogate (each candidate chosen from a priced pool by "
    "the front it is expected to grow per second of training, from one model of every trial so "
    "far, covering the latency bands as bands does), bands (NSGA-II, with proposals steered so "
    "that every latency band from the space's fastest network to the budget gets candidates), "
    f"nsga2, tpe or random (Optuna's samplers alone) [default: {DEFAULT_SAMPLER}].",
)
@_opt(
    "--objective",
    help="pareto: accuracy up, latency down; reward: MnasNet's acc * (ms/target_ms)^w.",
)
@_opt("--target-ms", help="Latency the reward objective aims at.")
@_opt("--reward-exponent", help="w in the MnasNet reward.")
@_opt("--seed", help="Seed of the sampler, the data split and training.")
@_opt("--out", help="Output folder [default: results/<study>].")
@_opt(
    "--warm-start/--no-warm-start",
    help="Train the zoo networks that fit the budget first, as baselines beside the "
    "--trials searched candidates. [default: on]",
)
@_opt(
    "--baselines",
    help="How many of the zoo networks within the budget the warm start trains, spread over "
    "the budget's latency range from the fastest to the slowest; 'all' for every one.",
)
@_opt("--max-retries", help="Retries of a candidate whose worker died.")
@_opt("--input-size", help="Side of the deployment input the cost is priced at.")
@_opt("--trial-timeout-s", help="Wall-time limit of one candidate's training.")
@_opt(
    "--storage-outage-s",
    help="How long to wait out an unreachable study database (retrying with backoff) before "
    "stopping with the command that resumes.",
)
@_opt(
    "--confirm-seeds",
    help="After the search, train front members and zoo baselines this "
    "many more times with other seeds, and take the front on seed "
    f"means [default: {per_dataset(DEFAULT_CONFIRM_SEEDS, OTHER_CONFIRM_SEEDS)}; 0: off].",
)
@_opt(
    "--confirm-where",
    help="uncertain: confirm only the front members and baselines within the noise of a "
    "neighbour on the front (or, for a baseline, of the best searched candidate at no more "
    "latency), the noise estimated from the whole study; all: every one. [default: uncertain]",
)
@_opt(
    "--finalize",
    help="After the search (and confirm), train this many searched front members and every "
    "zoo network under the budget with the final recipe on the whole training split, and "
    "score the test split once (see `nas finalize`) [default: 0, off].",
)
@_opt("--final-epochs", help="Epochs of the final recipe.")
@_opt("--final-seeds", help="Training seeds per finalized network.")
@_opt(
    "--evaluator",
    help="train: train each candidate; table: look its accuracy up in NAS-Bench-Macro's "
    "published results (--space nasbench-macro --input-size 32), one of its three runs "
    "chosen by the training seed; table-mean: their mean.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML file of settings (keys are these flags); flags win.",
)
def command(config_file: str | None, **flags: Any) -> None:
    """Search the space for the Pareto front of accuracy against latency on the target.

    Candidates are priced in MFLOPs (millions of multiply-adds) and parameters with fvcore and
    in milliseconds with the target's lookup table, at the deployment input (3x224x224, 1000
    classes); over-budget candidates are recorded but never trained. The rest train briefly on
    Ray workers at the dataset's own resolution. Every trial is kept in the study database;
    browse it with `nas dashboard` or `optuna-dashboard`.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    given = {key: value for key, value in flags.items() if value is not None}
    file_settings = read_config_file(config_file) if config_file else {}
    config = build_config(file_settings, given)
    console.print(f"[bold]nas search[/bold]: study {config.study_name}")
    from nas.outputs import OutputsNotWritten

    try:
        result = _search(config)
    except OutputsNotWritten as error:  # the search is done: a resume only writes the files
        click.echo(
            f"nas: error: {error}: free space or choose another --out, then: "
            f"{resume_command(config)}",
            err=True,
        )
        sys.exit(2)
    except StorageUnavailable as error:
        click.echo(f"nas: search stopped: {error}; resume with: {resume_command(config)}", err=True)
        sys.exit(1)
    except SearchFailed as error:
        click.echo(f"nas: search failed: {error}", err=True)
        sys.exit(1)
    if result.interrupted:
        click.echo(f"stopped; resume with: {resume_command(config)}", err=True)
        sys.exit(130)
    _print_result(result)
    if result.final is not None:
        from nas.commands.finalize import print_final_training

        print_final_training(config.storage, result.study_name)
        if result.final.n_failed:
            click.echo(f"nas: {result.final.n_failed} final runs failed", err=True)
            sys.exit(1)


def _search(config: SearchConfig) -> SearchResult:
    """`search`, leaving no empty database behind where a start fails (`FreshStorage`)."""
    from nas.commands._fresh_storage import FreshStorage
    from nas.search import search

    fresh = FreshStorage(config.storage, config.artifact_dir)
    try:
        return search(config)
    except BaseException:
        fresh.remove_if_unused()
        raise


def resume_command(config: SearchConfig) -> str:
    """The command that continues this search: every setting that differs from the default.

    A storage password is never printed: the URL goes without it, and the command says to set
    PGPASSWORD, which libpq reads when the URL has none.
    """
    from nas.storage.urls import without_password

    args = ["nas", "search", "--resume", "--study", config.study_name]
    needs_password = False
    for name, value in config.to_dict(mask=False).items():
        if name in ("resume", "study") or value == _DEFAULTS[name]:
            continue
        if name == "storage":
            value, needs_password = without_password(value)
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{name.replace('_', '-')}")
        else:
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    command = shlex.join(args)
    return (
        f"{command} (with PGPASSWORD set to the database password)" if needs_password else command
    )


def _print_result(result: SearchResult) -> None:
    """The front and the study's counts (`nas.counts`), as `nas report` gives them too."""
    from nas.outputs import FRONT_HEADERS, front_cells

    counts = result.counts
    assert counts is not None  # the driver counts every study it finishes

    rows = [[*front_cells(row, row.name), row.arch] for row in result.pareto]
    print_table(
        f"Pareto front of {result.study_name}: {counts.front_title()} (val acc with "
        f"its 95% interval; vs cheaper: beyond the noise or a tie)",
        [*FRONT_HEADERS, "arch"],
        rows,
    )
    if result.close_in_latency is not None:
        console.print(result.close_in_latency.line(), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"{counts.sentence()}; in {result.wall_seconds / 60:.1f} min; "
        f"results in {result.out_dir}/ (pareto.json, trials.csv)",
        highlight=False,
        soft_wrap=True,
    )
