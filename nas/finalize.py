"""Finalize: train the search's picks and the zoo as a user would, and score the test split once.

A search ranks candidates by a few epochs on a subset, scored on a validation split taken out of
the training data. What a user deploys is trained far longer on all of it. `finalize` trains the
chosen searched networks and, with exactly the same recipe and seeds, every zoo network under
the study's budget, on the whole training split (no validation split, no subset), then scores
the test split once per run. Nothing is selected by its test score afterwards: the picks were
fixed by the search's validation accuracies before any test image was read. A zoo network that
the training input is too small for (an unpadded window, `nas.proposals.cannot_train`) is left
out, in one line, before the searched picks are chosen.

Which searched networks: the front of the searched candidates (baselines left out) on seed means,
including the confirm runs. `top` of them are taken so that each zoo network, cheapest first, is
challenged by the most accurate front member at no more latency; places left over go to the most
accurate remaining members. A pick that covers no zoo network answers no question about it.

The runs live in a companion study, ``<study>.final`` (the reasons are those of
``<study>.confirm``, `nas.confirm`): test accuracy is its objective, each trial names the search
trial it finalizes (``finalizes``; None for a zoo network the search never trained) or the zoo
network (``baseline``), its ``seed`` and recipe, and carries its trained weights. A rerun trains
only the runs that are missing, so an interrupted finalize resumes; it must use the recipe the
study was finalized with.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import optuna
import ray
from optuna.trial import TrialState
from rich.console import Console

from nas.companion_runs import CompanionRun, fail_left_running, train_runs
from nas.config import (
    DEFAULT_FINAL_EPOCHS,
    DEFAULT_FINAL_SEEDS,
    DEFAULT_FINAL_TOP,
    SearchConfig,
)
from nas.errors import InputError
from nas.evaluators.datasets import Dataset, load_dataset
from nas.evaluators.latency import load_table
from nas.evaluators.recipe import Recipe
from nas.front import TrainedRow, pareto_front, trained_rows
from nas.pricing import estimate_price
from nas.proposals import cannot_train, left_out_line
from nas.ray_cluster import worker_slots
from nas.recipes import final_recipe, searched_recipe
from nas.search_spaces.arch import Arch
from nas.search_spaces.signatures import InputShape
from nas.search_spaces.zoo import ZOO
from nas.stop_signals import stopping_cleanly
from nas.storage import (
    DEFAULT_STORAGE_URL,
    OUTAGE_WINDOW_S,
    StudyLease,
    artifact_store_for,
    mask_password,
)
from nas.study import FINAL_SUFFIX, companion
from nas.study_attrs import DatasetInfo, StudyAttrs, write_study_attrs
from nas.trials import TrialAttrs
from nas.worker import check_gpu_training, remote_trainer


@dataclass(frozen=True)
class FinalizeOptions:
    """What `nas finalize` (or `nas search --finalize K`) is asked to do."""

    study: str | None = None
    storage: str = DEFAULT_STORAGE_URL
    top: int = DEFAULT_FINAL_TOP
    epochs: int = DEFAULT_FINAL_EPOCHS
    seeds: int = DEFAULT_FINAL_SEEDS
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    workers: int | None = None
    data_dir: str | None = None
    """Where the study's dataset is on this machine [default: where the search read it]."""
    artifact_dir: str | None = None
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for name in ("top", "epochs", "seeds", "cpus_per_trial", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.gpus_per_trial < 0:
            raise InputError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")


@dataclass(frozen=True)
class FinalPick:
    """A network to finalize: a searched front member or a zoo network under the budget."""

    label: str
    arch: str
    latency_ms: float
    mflops: float
    finalizes: int | None
    baseline: str | None

    def attrs(self) -> dict[str, Any]:
        return {
            "finalizes": self.finalizes,
            "baseline": self.baseline,
            "latency_ms": self.latency_ms,
            "mflops": self.mflops,
        }


@dataclass(frozen=True)
class FinalizeResult:
    study_name: str
    final_study_name: str
    picks: list[FinalPick]
    n_finished: int
    n_failed: int
    n_already: int
    interrupted: bool = False


def study_config(study: optuna.Study) -> SearchConfig:
    """The search's configuration, as recorded on the study."""
    config = StudyAttrs.of(study).search_config()
    if config is None:
        raise InputError(
            f"study {study.study_name!r} records no search configuration: it was not made by "
            f"`nas search`"
        )
    return config


def choose_searched(study: optuna.Study, top: int, zoo_latencies: list[float]) -> list[TrainedRow]:
    """`top` searched front members (rows of `trained_rows`) by `cover_zoo_first`."""
    searched = [row for row in trained_rows(study) if not row.baseline]
    return cover_zoo_first(pareto_front(searched), top, zoo_latencies)


def cover_zoo_first(
    front: list[TrainedRow], top: int, zoo_latencies: list[float]
) -> list[TrainedRow]:
    """`top` members of `front`: for each zoo latency, cheapest first, the most accurate
    member at no more latency not yet taken; then the most accurate of the rest. Fastest first.
    """
    chosen: list[TrainedRow] = []
    for latency in sorted(zoo_latencies):
        fitting = [row for row in front if row.latency_ms <= latency and row not in chosen]
        if fitting and len(chosen) < top:
            chosen.append(max(fitting, key=attrgetter("front_accuracy")))
    rest = sorted(
        (row for row in front if row not in chosen),
        key=attrgetter("front_accuracy"),
        reverse=True,
    )
    chosen += rest[: max(top - len(chosen), 0)]
    return sorted(chosen, key=attrgetter("latency_ms"))


def zoo_under_budget(study: optuna.Study, config: SearchConfig) -> list[FinalPick]:
    """Every zoo network the study's budget admits, priced as the search prices a candidate.

    From the networks' operator signatures (`estimate_price`), which count what fvcore counts
    on the built model without building all of them at the deployment input: every finalize,
    and every refusal of one, would otherwise wait for the whole zoo to be built and traced."""
    table = load_table(config.target)
    trained = {
        attrs.baseline: trial.number
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (attrs := TrialAttrs.of(trial)).baseline
    }
    picks = []
    for name, factory in ZOO.items():
        arch = factory()
        try:
            cost = estimate_price(arch, config, table)
        except InputError:
            continue  # the table cannot price this network's operators
        if cost.feasible:
            picks.append(
                FinalPick(
                    label=name,
                    arch=arch.to_string(),
                    latency_ms=cost.latency_ms,
                    mflops=cost.mflops,
                    finalizes=trained.get(name),
                    baseline=name,
                )
            )
    return sorted(picks, key=lambda pick: pick.latency_ms)


def trainable_zoo(
    zoo: list[FinalPick], recipe: Recipe, data_shape: InputShape | None
) -> tuple[list[FinalPick], list[str]]:
    """The zoo picks `recipe` can train on images of `data_shape`, and the names of those it
    cannot (`nas.proposals.cannot_train`: an input too small for an unpadded window); every
    pick where the shape is unknown (a study recorded by an earlier version)."""
    if data_shape is None:
        return zoo, []
    kept, left_out = [], []
    for pick in zoo:
        if cannot_train(Arch.from_string(pick.arch), recipe, data_shape) is None:
            kept.append(pick)
        else:
            left_out.append(pick.label)
    return kept, left_out


def plan_picks(
    study: optuna.Study,
    top: int,
    recipe: Recipe | None = None,
    data_shape: InputShape | None = None,
) -> list[FinalPick]:
    """The searched picks then the zoo networks; `InputError` when nothing was trained.

    The zoo networks are those under the budget that `recipe` (the final recipe unless given)
    can train on images of `data_shape` (the study's recorded data unless given)."""
    return _plan(study, top, recipe, data_shape)[0]


def _plan(
    study: optuna.Study, top: int, recipe: Recipe | None, data_shape: InputShape | None
) -> tuple[list[FinalPick], list[str]]:
    """`plan_picks`, and the zoo networks under the budget left out (`trainable_zoo`)."""
    config = study_config(study)
    if recipe is None:
        recipe = final_recipe(searched_recipe(study), DEFAULT_FINAL_EPOCHS, 1)
    if data_shape is None:
        recorded = StudyAttrs.of(study).dataset
        data_shape = recorded_shape(recorded.input_shape if recorded else None)
    # Left out before the searched picks are chosen: a pick meant to challenge a zoo network
    # that never trains would answer no question.
    zoo, left_out = trainable_zoo(zoo_under_budget(study, config), recipe, data_shape)
    rows = choose_searched(study, top, [pick.latency_ms for pick in zoo])
    if not rows:
        raise InputError(
            f"study {study.study_name!r} has no searched candidate trained to the end yet: "
            f"run (or resume) `nas search` first"
        )
    searched = [
        FinalPick(
            label=f"trial {row.number}",
            arch=row.arch,
            latency_ms=row.latency_ms,
            mflops=row.mflops,
            finalizes=row.number,
            baseline=None,
        )
        for row in rows
    ]
    return searched + zoo, left_out


def recorded_shape(shape: tuple[int, ...] | None) -> InputShape | None:
    """A recorded (channels, height, width), or None where none was recorded."""
    if shape is None or len(shape) != 3:
        return None
    channels, height, width = shape
    return channels, height, width


def final_seeds(config: SearchConfig, seeds: int) -> list[int]:
    return [config.seed + k for k in range(seeds)]


def missing_runs(final_study: optuna.Study | None, picks: list[FinalPick], seeds: list[int]):
    """The runs not yet finished, seed by seed, so a stopped finalize has one seed of all."""
    done = set()
    if final_study is not None:
        for trial in final_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = TrialAttrs.of(trial)
            done.add((attrs.arch, attrs.seed))
    return [
        CompanionRun(arch=pick.arch, seed=seed, label=pick.label, attrs=pick.attrs())
        for seed in seeds
        for pick in picks
        if (pick.arch, seed) not in done
    ], len(done)


def load_final_data(config: SearchConfig, data_dir: str | None) -> Dataset:
    """The study's dataset with no validation split and no subset: all of its training images."""
    return load_dataset(config.dataset, data_dir or config.data_dir, val_count=0, seed=config.seed)


def check_same_recipe(final_study: optuna.Study, recipe: Recipe, data: Dataset) -> None:
    """A resumed finalize must train what the study was finalized with, or the runs mix."""
    identity = {"recipe": recipe.to_dict(), "train_images": len(data.train_labels)}
    recorded = StudyAttrs.of(final_study).identity
    if recorded is None:
        write_study_attrs(final_study, identity=identity, dataset=DatasetInfo.of(data))
        return
    differences = recipe.changes_from(recorded["recipe"])
    if recorded.get("train_images") != identity["train_images"]:
        differences.append(
            f"training images {recorded.get('train_images')} -> {identity['train_images']}"
        )
    if differences:
        raise InputError(
            f"study {final_study.study_name!r} was finalized with another recipe "
            f"({'; '.join(differences)}): rerun with the same settings to resume it, or remove "
            f"it (optuna delete-study --study-name {final_study.study_name} --storage URL)"
        )


@dataclass(frozen=True)
class FinalizePlan:
    """What a finalize will train, worked out (and every input checked) before Ray starts."""

    picks: list[FinalPick]
    recipe: Recipe
    data: Dataset
    seeds: list[int]
    left_out: tuple[str, ...] = ()
    """Zoo networks under the budget that the training input is too small for."""


def prepare(study: optuna.Study, options: FinalizeOptions) -> FinalizePlan:
    config = study_config(study)
    recipe = final_recipe(searched_recipe(study), options.epochs, options.cpus_per_trial)
    data = load_final_data(config, options.data_dir)
    picks, left_out = _plan(study, options.top, recipe, data.input_shape)
    return FinalizePlan(picks, recipe, data, final_seeds(config, options.seeds), tuple(left_out))


def run_finalize(
    study: optuna.Study,
    plan: FinalizePlan,
    options: FinalizeOptions,
    say: Callable[[str], None],
    trainer: Any | None = None,
    slots: Callable[[], int] | None = None,
    stop_if: Callable[[], str | None] | None = None,
) -> FinalizeResult:
    """Train the runs of `plan` that are missing; Ray must be running.

    The search passes its own trainer and slots; on its own, finalize makes them from `options`.
    `stop_if`: see `nas.companion_runs.train_runs`.
    """
    final_study = companion(study, create=True, suffix=FINAL_SUFFIX)
    assert final_study is not None
    check_same_recipe(final_study, plan.recipe, plan.data)
    fail_left_running(final_study)
    runs, n_already = missing_runs(final_study, plan.picks, plan.seeds)
    result = FinalizeResult(study.study_name, final_study.study_name, plan.picks, 0, 0, n_already)
    if plan.left_out:
        trains_at = plan.recipe.proxy_input(plan.data.input_shape)
        say(f"finalize: {left_out_line(plan.left_out, trains_at, 'training input')}")
    if not runs:
        say(f"finalize: all {n_already} runs of {final_study.study_name!r} are done")
        return result
    data = plan.data
    say(
        f"finalize: {len(runs)} runs ({len(plan.picks)} networks x {len(plan.seeds)} seeds, "
        f"{plan.recipe.epochs} epochs on all {len(data.train_labels)} training images, test "
        f"split of {len(data.test_labels)} scored once) into study {final_study.study_name!r}"
    )
    trainer = trainer or remote_trainer(options.cpus_per_trial, options.gpus_per_trial)
    done = train_runs(
        final_study,
        runs,
        plan.recipe,
        trainer,
        ray.put(data),
        slots or _cluster_slots(options),
        say,
        final=True,
        artifacts=artifact_store_for(options.storage, options.artifact_dir),
        stop_if=stop_if,
    )
    return dataclasses.replace(result, n_finished=done.finished, n_failed=done.failed)


def finalize(options: FinalizeOptions, say: Callable[[str], None] | None = None) -> FinalizeResult:
    """Open the study, check the request, start (or join) Ray, and train what is missing.

    Ctrl-C or SIGTERM (kill, docker stop, timeout) keeps the finished runs recorded, fails the
    running ones (a rerun trains them) and returns with `interrupted` set; before Ray starts
    either ends the command with nothing written.
    """
    from nas.ray_cluster import describe, join_ray
    from nas.select import open_existing_storage, pick_study

    say = say or Console(stderr=True).print
    storage = open_existing_storage(options.storage, outage_window_s=OUTAGE_WINDOW_S)
    with contextlib.ExitStack() as stack:
        # Also where SIGINT arrives ignored (a command started in the background by a script).
        stack.enter_context(stopping_cleanly(say, STILL_STOPPING))
        stack.callback(storage.engine.dispose)
        study = pick_study(storage, options.study)
        say(f"study {study.study_name!r} in {mask_password(options.storage)}")
        # One finalize per study: a second would fail the first's running runs as left over.
        lease = StudyLease.acquire(storage.engine, f"{study.study_name}{FINAL_SUFFIX}")
        stack.callback(lease.release)
        plan = prepare(study, options)  # bad input fails before Ray starts
        # Joined before the final study exists; a trial no node can run fails here, one line.
        connection = join_ray(
            options.ray_address, options.cpus_per_trial, options.gpus_per_trial, say
        )
        # Ray's own SIGTERM handler (set as it starts) exits at once, leaving runs RUNNING.
        stack.enter_context(stopping_cleanly(say, STILL_STOPPING))
        try:
            say(describe(connection))
            # As the search does: a GPU node whose torch cannot use its GPU fails here, once.
            gpu = check_gpu_training(options.cpus_per_trial, options.gpus_per_trial, say=say)
            if gpu is not None:
                say(f"GPU runs: {gpu.get('name')} (CUDA {gpu.get('cuda')})")
            return run_finalize(study, plan, options, say, stop_if=lease.stop_reason)
        except KeyboardInterrupt:
            say("interrupted: rerun the same command to train the runs that are missing")
            final_name = f"{study.study_name}{FINAL_SUFFIX}"
            return FinalizeResult(study.study_name, final_name, plan.picks, 0, 0, 0, True)
        finally:
            connection.close()


STILL_STOPPING = "still stopping: failing the running runs so that a rerun trains them"


def _cluster_slots(options: FinalizeOptions) -> Callable[[], int]:
    """As the search counts them: by the cluster's CPUs, or by its GPUs with --gpus-per-trial."""
    return lambda: worker_slots(options.workers, options.cpus_per_trial, options.gpus_per_trial)
