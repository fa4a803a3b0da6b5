"""The Optuna study of a search: create or resume it, and keep it honest across restarts.

Objectives: in ``pareto`` mode maximise validation accuracy and minimise target latency; in
``reward`` mode maximise MnasNet's acc * (ms / target_ms)^w. Budgets are Optuna constraints set
on each trial when it is priced, so constrained TPE and NSGA-II learn where the budget ends
from candidates that were priced but never trained.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.recipe import Recipe
from nas.study_attrs import StudyAttrs, write_study_attrs
from nas.trials import Outcome, TrialAttrs, check_names, write_frozen_attrs

CONSTRAINT_NAMES = ("mflops", "params", "latency_ms")


def set_budget_constraints(trial: optuna.Trial, violations: tuple[float, ...]) -> None:
    """Record how far over each budget a priced candidate is (<= 0 feasible).

    Optuna's samplers read these from the trial itself, feasible or not, trained or not.
    """
    for name, value in zip(CONSTRAINT_NAMES, violations):
        trial.set_constraint(name, value)


def make_sampler(config: SearchConfig, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """TPE models the conditional space jointly (multivariate, grouped by depth).

    Samplers keep their random state in memory only; a resumed study reseeds with the number of
    trials it already holds, so it continues deterministically instead of replaying the
    proposals of the run it resumes.
    """
    seed = config.seed + trials_so_far
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if config.sampler == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=8
            )
        # bands steers NSGA-II (nas.reach); surrogate queues its own choices and leaves NSGA-II
        # the proposals its pool has none for (nas.acquisition)
        if config.sampler in ("nsga2", "bands", "surrogate"):
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    return optuna.samplers.RandomSampler(seed=seed)


def directions(config: SearchConfig) -> list[str]:
    return ["maximize", "minimize"] if config.objective == "pareto" else ["maximize"]


def objective_values(config: SearchConfig, accuracy: float, latency_ms: float) -> list[float]:
    if config.objective == "pareto":
        return [accuracy, latency_ms]
    assert config.target_ms is not None
    return [accuracy * (latency_ms / config.target_ms) ** config.reward_exponent]


def check_study_name(config: SearchConfig, storage: optuna.storages.BaseStorage) -> set[str]:
    """Refuse a new search on a study that exists, or a resume of one that does not, without
    writing anything; returns the storage's study names."""
    name = config.study_name
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    if name in existing and not config.resume:
        raise InputError(
            f"study {name!r} already exists in {_where(config)}: add --resume to "
            f"continue it, or --study NAME to start another"
        )
    if name not in existing and config.resume:
        known = ", ".join(sorted(existing)) or "none"
        raise InputError(
            f"--resume: no study {name!r} in {_where(config)} (studies there: {known})"
        )
    return existing


def open_study(
    config: SearchConfig, storage: optuna.storages.BaseStorage, recipe: Recipe | None = None
) -> optuna.Study:
    """Create the study, or load it with --resume after checking it is the same search (and,
    given the `recipe` its candidates will train with, the same proxy)."""
    name = config.study_name
    existing = check_study_name(config, storage)
    sampler = make_sampler(config)
    if name in existing:
        study = optuna.load_study(
            study_name=name, storage=storage, sampler=sampler, pruner=make_pruner(config)
        )
        if recipe is not None:
            check_same_recipe(study, recipe, config.force)
        _check_same_search(study, config)
        study.sampler = make_sampler(config, len(study.get_trials(deepcopy=False)))
        return study
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=make_pruner(config),
        directions=directions(config),
    )
    write_study_attrs(study, config=config.to_dict(), identity=config.identity())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(
            ["accuracy", "latency_ms"] if config.objective == "pareto" else ["reward"]
        )
    return study


def _where(config: SearchConfig) -> str:
    return config.to_dict()["storage"]


def _check_same_search(study: optuna.Study, config: SearchConfig) -> None:
    """Refuse a resume that changes what defines the search; a field the study predates (its
    recorded identity lacks it) is recorded now and checked from the next resume on."""
    recorded = StudyAttrs.of(study).identity or {}
    identity = config.identity()
    differences = [
        f"{key} {recorded.get(key)!r} -> {value!r}"
        for key, value in identity.items()
        if key in recorded and recorded[key] != value
    ]
    if differences and not config.force:
        raise InputError(
            f"--resume: study {study.study_name!r} was a different search "
            f"({'; '.join(differences)}); add --force to continue it anyway"
        )
    if recorded != identity:
        write_study_attrs(study, identity=identity)
    write_study_attrs(study, config=config.to_dict())


RESUMABLE_RECIPE_CHANGES = ("threads", "max_seconds")
"""Recipe fields a resumed search may change: a candidate's thread count and the guard against
runaway trials change where and how long it trains, not what its accuracy measures."""


def check_same_recipe(study: optuna.Study, recipe: Recipe, force: bool) -> None:
    """Refuse to resume `study` with another proxy recipe unless forced: its trials would rank
    accuracies measured by two different proxies as if by one.

    A recorded recipe that lacks a field (written before the field existed) had its default.
    """
    recorded = StudyAttrs.of(study).recipe
    if recorded is None:
        return
    differences = recipe.changes_from(recorded, ignore=RESUMABLE_RECIPE_CHANGES)
    if differences and not force:
        raise InputError(
            f"--resume: study {study.study_name!r} trained its candidates with another proxy "
            f"recipe ({'; '.join(differences)}): resume with the settings it was started with "
            f"(`nas report` shows its recipe), or add --force to go on with the new one"
        )


def requeue_orphans(study: optuna.Study) -> list[int]:
    """Fail the trials a dead driver left RUNNING and queue their parameters to run again.

    Only the driver writes to the study, so when a driver starts, anything still RUNNING was
    lost with the previous one. Returns the orphaned trial numbers.
    """
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in orphans:
        attempt = TrialAttrs.of(trial).attempt or 1  # as every other ended trial says it
        write_frozen_attrs(study, trial, outcome=Outcome.INTERRUPTED, attempt=attempt)
        study.tell(trial.number, state=TrialState.FAIL)
        requeue(study, trial, reason="its driver stopped while it ran")
    return [trial.number for trial in orphans]


def requeue(study: optuna.Study, trial: FrozenTrial | optuna.Trial, reason: str) -> None:
    """Queue the same candidate again (same parameters, or the same fixed architecture)."""
    attrs = TrialAttrs.of(trial)
    fixed = {
        key: getattr(attrs, key) for key in ("zoo", "baseline") if getattr(attrs, key) is not None
    }
    study.enqueue_trial(
        dict(trial.params),
        skip_if_exists=False,
        user_attrs=check_names(
            {
                **fixed,
                "retry_of": trial.number,
                "attempt": (attrs.attempt or 1) + 1,
                "retry_reason": reason,
            }
        ),
    )


def count_outcomes(study: optuna.Study) -> dict[Outcome, int]:
    counts: dict[Outcome, int] = {}
    for trial in study.get_trials(deepcopy=False):
        outcome = TrialAttrs.of(trial).outcome
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def count_trained(study: optuna.Study) -> tuple[int, int]:
    """(searched candidates that count toward --trials, zoo baselines) trained so far.

    Only finished trials count: the recorder writes a trial's outcome before it tells the study,
    so a driver killed in between leaves a RUNNING trial that says "trained" and that the next
    driver fails and trains again (`requeue_orphans`).
    """
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    records = [TrialAttrs.of(trial) for trial in finished]
    searched = sum(attrs.counts_toward_trials for attrs in records)
    baselines = sum(
        bool(attrs.outcome and attrs.outcome.counts) and attrs.baseline is not None
        for attrs in records
    )
    return searched, baselines


def finished_curves(study: optuna.Study) -> tuple[list[list[float]], list[float]]:
    """Validation-accuracy curves of candidates trained to the end, and their latencies.

    Both lists share one order; early stopping compares a candidate with the curves of the
    finished candidates at least as fast as it. A trial priced without a latency never counts
    as faster than anything.
    """
    trained = [
        attrs
        for attrs in map(
            TrialAttrs.of, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        )
        if attrs.outcome is Outcome.TRAINED
    ]
    curves = [attrs.accuracies for attrs in trained]
    latencies = [
        float(attrs.latency_ms) if attrs.latency_ms is not None else math.inf for attrs in trained
    ]
    return curves, latencies


def rung_points(
    study: optuna.Study, rungs: tuple[int, ...]
) -> dict[int, list[tuple[float, float]]]:
    """(accuracy, latency) at each rung epoch of every candidate the study trained that far.

    What successive halving compares a new candidate with, rebuilt from the study on resume:
    trained, stopped and not-promoted candidates all count at the rungs their curves reached.
    """
    points: dict[int, list[tuple[float, float]]] = {rung: [] for rung in rungs}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        attrs = TrialAttrs.of(trial)
        if not (attrs.outcome and attrs.outcome.counts) or attrs.latency_ms is None:
            continue
        curve = attrs.accuracies
        for rung in rungs:
            if len(curve) >= rung and curve[rung - 1] is not None:
                points[rung].append((float(curve[rung - 1]), float(attrs.latency_ms)))
    return points


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    """The pruner of a single-objective study (multi-objective ones use `nas.stopping`'s rules)."""
    if config.scheduler == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=config.reduction_factor
        )
    return optuna.pruners.MedianPruner()


CONFIRM_SUFFIX = ".confirm"
"""The companion study of confirm runs is the search's name plus this (`nas.confirm`)."""
FINAL_SUFFIX = ".final"
"""The companion study of final trainings is the search's name plus this (`nas.finalize`)."""
_COMPANIONS = {
    CONFIRM_SUFFIX: ("confirms_study", "accuracy"),
    FINAL_SUFFIX: ("finalizes_study", "test_accuracy"),
}


def companion(
    study: optuna.Study, create: bool = False, suffix: str = CONFIRM_SUFFIX
) -> optuna.Study | None:
    """The confirm (or final) study of `study` in its storage; None if there is none yet and
    `create` is off."""
    name = f"{study.study_name}{suffix}"
    existing = set(optuna.get_all_study_names(study._storage))
    if name in existing:
        return optuna.load_study(study_name=name, storage=study._storage)
    if not create:
        return None
    found = optuna.create_study(
        study_name=name, storage=study._storage, direction="maximize", load_if_exists=True
    )
    back_pointer, metric = _COMPANIONS[suffix]
    write_study_attrs(found, **{back_pointer: study.study_name})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        found.set_metric_names([metric])
    return found


def confirm_runs(study: optuna.Study) -> dict[int, list[dict[str, Any]]]:
    """Search trial number -> its finished confirm runs (seed, accuracy, validation count)."""
    found = companion(study)
    if found is None:
        return {}
    runs: dict[int, list[dict[str, Any]]] = {}
    for trial in found.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = TrialAttrs.of(trial)
        if attrs.confirms is None or attrs.accuracy is None:
            continue
        runs.setdefault(attrs.confirms, []).append(
            {
                "confirms": attrs.confirms,
                "seed": attrs.seed,
                "accuracy": attrs.accuracy,
                "val_count": attrs.val_count,
                "trial": trial.number,
            }
        )
    for found_runs in runs.values():
        found_runs.sort(key=lambda run: run["seed"])
    return runs


def trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    """One row of trials.csv and of the tables reports draw from."""
    attrs = TrialAttrs.of(trial)
    low, high = attrs.accuracy_interval or (None, None)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "outcome": attrs.outcome,
        "accuracy": attrs.accuracy,
        "accuracy_low": low,
        "accuracy_high": high,
        "val_count": attrs.val_count,
        "latency_ms": attrs.latency_ms,
        "mflops": attrs.mflops,
        "params": attrs.params,
        "arch": attrs.arch,
        "zoo": attrs.zoo,
        "baseline": attrs.baseline,
        "epochs": len(attrs.curve or []),
        "train_seconds": attrs.train_seconds,
        "worker_host": attrs.worker_host,
        "error": attrs.error,
    }
